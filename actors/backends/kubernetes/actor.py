"""K8sActor: the Kubernetes job backend — one Job per job attempt, one watch for all pods.

Same protocol as the LocalActor: ``RunJob``/``StopJob`` in; ``JobLaunched``, step events
and ``JobExited`` told to the job's actor; output lines told to the LogActor.

- Jobs are named deterministically (``k8s.manifests.job_name``): a create answered 409
  is adoption (a takeover after an executor died), and the marker nonce is read back
  from the existing Job's annotation, since the old pod prints with it.
- ONE pod watch (``PodWatch``) for every Conveyor pod in the namespace; its events are
  routed here by the pod's Job name.
- One log follower thread per running pod (``LogFollower``); ``JobExited`` is told only
  once the pod is terminal AND its log is drained.
- API calls run on a small worker pool with retries (tenacity), so throttling or a slow
  API server never blocks this mailbox; the calls per job are constant (create, log, and
  a Job read or delete only when a pod is deleted or the job is cancelled).
- A pod lost to the infrastructure (eviction, deletion, node loss) is run again as a new
  Job (``…-r1``) up to ``infra_retries`` times; a user's non-zero exit is not.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, assert_never

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

import store
from actors.backends.kubernetes.calls import JobCalls, K8sSettings, job_timeout
from actors.backends.kubernetes.logs import LogFollower, add_note
from actors.backends.kubernetes.messages import (
    Created,
    CreateFailed,
    Deleted,
    JobChecked,
    K8sMessage,
    LogDrained,
    PodSeen,
    Synced,
)
from actors.backends.kubernetes.tracker import Tracker, attempt_job_name
from actors.backends.kubernetes.watch import PodWatch
from actors.base import ActorThread, ConveyorActor, FailureHook, tell_safely
from actors.launcher import Launcher
from actors.messages import (
    ExitKnown,
    JobExited,
    JobFinished,
    JobLaunched,
    RunJob,
    StopJob,
    Tick,
)
from actors.services import Services
from k8s import classify
from k8s.client import KubeApi, KubeError
from k8s.manifests import CONTAINER_NAME, MANAGED_SELECTOR
from observability import metrics, trace
from observability.description import ActorDescription
from workflow.states import JobStatus

__all__ = ["K8sActor", "K8sActorProxy", "K8sSettings"]

log = logging.getLogger(__name__)

class K8sActor(ConveyorActor):
    kind = "K8sActor"
    stop_on_failure = True  # its watch, ticker, launcher and followers go with it

    def __init__(self, services: Services, settings: K8sSettings, *,
                 on_crash: FailureHook | None = None) -> None:
        super().__init__("backend/kubernetes", on_crash=on_crash)
        self.services = services
        self.settings = settings
        self.api = KubeApi(settings.configuration, settings.namespace,
                           on_error=metrics.k8s_api_error)
        self.trackers: dict[str, Tracker] = {}  # RunJob.name -> tracker
        self.by_k8s_name: dict[str, str] = {}  # Kubernetes Job name -> RunJob.name
        self.pods: dict[str, tuple[dict[str, Any], bool]] = {}  # Job name -> (pod, deleted)
        self.synced = False
        self.waiting_sync: set[str] = set()  # adopted jobs whose pod may not exist
        self.pending: set[str] = set()  # jobs whose pod has a PendingProblem
        self.watch = PodWatch(
            self.api, MANAGED_SELECTOR, timeout_s=settings.watch_timeout_s,
            on_event=lambda kind, pod: self._tell(PodSeen(kind, pod)),
            on_synced=lambda: self._tell(Synced()),
            on_state=self._watch_state,
        )
        self._errors_lock = threading.Lock()
        self.calls = JobCalls(self.api, settings, self._tell, self._count_error)
        tick = max(0.05, min(1.0, settings.pending_timeout_s / 4))
        self.ticker = ActorThread("k8s-ticker", lambda stop: self._tick_loop(stop, tick))
        self.launcher = Launcher("k8s-launcher")  # starts the log followers' threads

    # -- lifecycle -----------------------------------------------------------------------
    def on_start(self) -> None:
        self.state = "listing pods"
        self.launcher.start()
        self.watch.start()
        self.ticker.start()

    def on_stop(self) -> None:
        # Jobs are left running: another executor (or this one restarted) adopts them.
        self.calls.stopping.set()
        self.watch.stop()
        self.ticker.stop()
        self.launcher.stop()  # before the followers: none is started after their stop
        for tracker in self.trackers.values():
            if tracker.follower is not None:
                tracker.follower.stop()
        self.calls.shutdown()
        self.api.close()

    def _tell(self, message: Any) -> None:
        tell_safely(self.actor_ref, message)

    def _watch_state(self, text: str) -> None:
        self.state = text

    def _tick_loop(self, stop: Any, every: float) -> None:
        while not stop.wait(every):
            if self.pending:
                self._tell(Tick())

    def describe(self) -> ActorDescription:
        for name, value in self.watch.stats.items():
            self.counters[name] = value
        self.counters["jobs_tracked"] = len(self.trackers)
        return super().describe()

    def running_jobs(self) -> int:
        return len(self.trackers)

    # -- messages ------------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, K8sMessage):
            self._handle(message)
            return None
        return super().on_receive(message)

    def _handle(self, message: K8sMessage) -> None:
        match message:
            case PodSeen():
                self._pod_seen(message)
            case RunJob():
                self._run(message)
            case StopJob():
                self._stop_job(message)
            case Created():
                self._created(message)
            case CreateFailed():
                self._create_failed(message)
            case LogDrained():
                self._log_drained(message)
            case JobChecked():
                self._job_checked(message)
            case Deleted():
                self._deleted(message)
            case Synced():
                self._synced(message)
            case Tick():
                self._tick(message)
            case _:
                assert_never(message)

    def _run(self, run: RunJob) -> None:
        existing = self.trackers.get(run.name)
        if existing is not None:  # a repeated request: the same job, a new listener
            existing.run = run
            return
        name = attempt_job_name(run.build_id, run.job_key, run.attempt, 0)
        trace.mark(name, "run")
        tracker = Tracker(run=run, k8s_name=name, nonce=run.nonce, created_at=time.monotonic())
        self.trackers[run.name] = tracker
        self.by_k8s_name[name] = run.name
        self._submit_create(tracker)

    # -- creating ------------------------------------------------------------------------
    def _submit_create(self, tracker: Tracker) -> None:
        self.calls.create(tracker.run, tracker.k8s_name, tracker.retry)

    def _count_error(self, _exc: KubeError | None = None) -> None:
        with self._errors_lock:  # pool threads
            self.counters["api_errors"] += 1

    def _created(self, msg: Created) -> None:
        tracker = self.trackers.get(msg.handle)
        if tracker is None or tracker.k8s_name != msg.k8s_name:
            return
        tracker.nonce = msg.nonce
        tracker.adopted = msg.adopted
        tracker.state = "pending"
        self.counters["jobs_adopted" if msg.adopted else "jobs_created"] += 1
        if msg.adopted:
            tracker.cursor.read_store = tracker.retry == 0 and tracker.cursor.handled == 0
        if tracker.retry == 0:
            tell_safely(tracker.run.reply_to, JobLaunched(tracker.run.name))
        if tracker.cancel_reason is not None:
            self._delete(tracker)
        cached = self.pods.get(msg.k8s_name)
        if cached is not None:
            self._on_pod(tracker, cached[0], deleted=cached[1])
        elif msg.adopted:
            self.waiting_sync.add(msg.handle)
            self._check_adopted(msg.handle, msg.job)

    def _check_adopted(self, handle: str, job: Any) -> None:
        """An adopted Job with no pod (after a full list) that already finished: its pod
        is gone, so its result comes from the Job itself and its log is lost."""
        tracker = self.trackers.get(handle)
        if not self.synced or tracker is None or tracker.pod is not None or job is None:
            return
        self.waiting_sync.discard(handle)
        outcome = classify.classify_finished_job(job, job_timeout(tracker.run))
        if outcome is not None:
            tracker.outcome, tracker.drained = outcome, True
            self._maybe_exit(tracker)

    def _create_failed(self, msg: CreateFailed) -> None:
        tracker = self.trackers.get(msg.handle)
        if tracker is None or tracker.k8s_name != msg.k8s_name:
            return
        log.error("job %s of build %s: %s", tracker.run.job_key, tracker.run.build_id, msg.reason)
        self._exit(tracker, JobExited(None, tracker.cancel_reason or msg.reason,
                                      cancelled=tracker.cancel_reason is not None,
                                      infrastructure=msg.infrastructure))

    # -- the watch -------------------------------------------------------------------------
    def _synced(self, _msg: Synced) -> None:
        first = not self.synced
        self.synced = True
        if first:
            self.state = "running"
        for handle in list(self.waiting_sync):
            tracker = self.trackers.get(handle)
            if tracker is None or tracker.pod is not None:
                self.waiting_sync.discard(handle)
            else:  # the Job's status is read once more: it may have finished meanwhile
                self.calls.read_adopted(handle, tracker.k8s_name)

    def _pod_seen(self, msg: PodSeen) -> None:
        pod, deleted = msg.pod, msg.kind == "DELETED"
        name = classify.job_name_of(pod)
        if name is None:
            return
        handle = self.by_k8s_name.get(name)
        if handle is None:
            if deleted:
                self.pods.pop(name, None)
            else:
                self.pods[name] = (pod, False)
            return
        self.pods[name] = (pod, deleted)
        tracker = self.trackers.get(handle)
        if tracker is not None and tracker.state != "creating":
            self._on_pod(tracker, pod, deleted)

    def _on_pod(self, tracker: Tracker, pod: dict[str, Any], deleted: bool) -> None:
        uid = classify.pod_uid(pod)
        if tracker.pod_uid and uid != tracker.pod_uid:
            return  # backoffLimit 0: a second pod of the Job is never ours to follow
        tracker.pod, tracker.pod_uid = pod, uid
        self.waiting_sync.discard(tracker.run.name)
        ended = deleted or classify.is_terminal(pod)
        if ended:
            tracker.terminal.set()
        if tracker.follower is None and classify.container_started(pod):
            self._follow(tracker, pod)
        if tracker.outcome is not None or tracker.checking_job:
            return
        outcome = classify.classify_pod(pod, deleted=deleted)
        if outcome is None:
            tracker.state = "running" if classify.phase(pod) == "Running" else "pending"
            self._pending_problem(tracker, classify.pending_problem(pod))
            return
        self._pending_problem(tracker, None)
        if tracker.cancel_reason is not None:
            outcome = classify.Outcome(outcome.exit_code, tracker.cancel_reason)
        elif outcome.check_job:
            tracker.checking_job = True
            self.calls.check(tracker.run.name, uid, tracker.k8s_name)
            return
        self._decided(tracker, outcome)

    def _pending_problem(self, tracker: Tracker, problem: classify.PendingProblem | None) -> None:
        if problem is None:
            tracker.problem = None
            self.pending.discard(tracker.run.name)
            return
        if tracker.problem is None or tracker.problem.kind != problem.kind:
            tracker.problem_since = time.monotonic()
        tracker.problem = problem
        self.pending.add(tracker.run.name)

    def _tick(self, _msg: Tick) -> None:
        now = time.monotonic()
        for handle in list(self.pending):
            tracker = self.trackers.get(handle)
            if tracker is None or tracker.problem is None:
                self.pending.discard(handle)
                continue
            if now - tracker.problem_since >= self.settings.pending_timeout_s:
                self.pending.discard(handle)
                self.counters["pending_timeouts"] += 1
                self._delete(tracker)
                self._decided(tracker, classify.Outcome(None, tracker.problem.reason))

    def _job_checked(self, msg: JobChecked) -> None:
        tracker = self.trackers.get(msg.handle)
        if tracker is None:
            return
        if not msg.pod_uid:  # the re-read of an adopted Job after the list
            self._check_adopted(msg.handle, msg.job)
            return
        if msg.pod_uid != tracker.pod_uid or tracker.outcome is not None:
            return
        tracker.checking_job = False
        assert tracker.pod is not None
        pod_outcome = classify.classify_pod(tracker.pod, deleted=True)
        assert pod_outcome is not None
        if tracker.cancel_reason is not None:
            outcome = classify.Outcome(pod_outcome.exit_code, tracker.cancel_reason)
        else:
            outcome = classify.classify_deleted(msg.job, pod_outcome, job_timeout(tracker.run))
        self._decided(tracker, outcome)

    # -- logs ------------------------------------------------------------------------------
    def _follow(self, tracker: Tracker, pod: dict[str, Any]) -> None:
        handle, uid = tracker.run.name, classify.pod_uid(pod)

        def done(lines: int) -> None:
            self._tell(LogDrained(handle, uid, lines))

        def reconnect() -> None:
            with self._errors_lock:
                self.counters["log_reconnects"] += 1

        tracker.follower = LogFollower(
            api=self.api, pod=str(pod["metadata"]["name"]), container=CONTAINER_NAME,
            run=tracker.run, nonce=tracker.nonce, cursor=tracker.cursor,
            services=self.services, terminal=tracker.terminal, on_done=done,
            on_reconnect=reconnect,
        )
        self.launcher.submit(tracker.follower.start)
        self.counters["log_followers"] += 1

    def _log_drained(self, msg: LogDrained) -> None:
        tracker = self.trackers.get(msg.handle)
        if tracker is not None:
            trace.mark(tracker.k8s_name, "drained")
        if tracker is None or msg.pod_uid != tracker.pod_uid:
            return
        tracker.drained = True
        self._maybe_exit(tracker)

    # -- the end ---------------------------------------------------------------------------
    def _decided(self, tracker: Tracker, outcome: classify.Outcome) -> None:
        tracker.outcome = outcome
        tracker.state = "finishing"
        if tracker.follower is None:
            tracker.drained = True  # no container ever ran: there is no log
        self._maybe_exit(tracker)

    def _maybe_exit(self, tracker: Tracker) -> None:
        outcome = tracker.outcome
        if outcome is None:
            return
        if not tracker.drained:
            # The pod succeeded but its log is still being read: say so now, so a job
            # whose dependents need nothing from its output can release them at once.
            if (outcome.exit_code == 0 and not outcome.infrastructure
                    and tracker.cancel_reason is None and not tracker.success_told):
                tracker.success_told = True
                run = tracker.run
                at = store.utcnow()  # before the release: dependents start after it
                released = run.release_to is not None and tell_safely(
                    run.release_to,
                    JobFinished(run.job_key, JobStatus.SUCCEEDED.value, "succeeded", {}))
                tell_safely(run.reply_to, ExitKnown(0, released=released, at=at))
                trace.mark(tracker.k8s_name, "known")
            return
        run = tracker.run
        cancelled = tracker.cancel_reason is not None
        if outcome.infrastructure and not cancelled and \
                tracker.retry < self.settings.infra_retries:
            self.counters["infrastructure_retries"] += 1
            name = attempt_job_name(run.build_id, run.job_key, run.attempt, tracker.retry + 1)
            log.warning("job %s of build %s: %s; running it again as Job %s",
                        run.job_key, run.build_id, outcome.reason, name)
            add_note(run, tracker.cursor, f"[conveyor] {outcome.reason}; running the job "
                     f"again ({tracker.retry + 1} of {self.settings.infra_retries})",
                     self.services)
            self.by_k8s_name.pop(tracker.k8s_name, None)
            tracker.new_pod_attempt(name)
            tracker.nonce = run.nonce
            self.by_k8s_name[name] = run.name
            self._submit_create(tracker)
            return
        reason = tracker.cancel_reason or outcome.reason
        self._exit(tracker, JobExited(outcome.exit_code, reason, cancelled=cancelled,
                                      infrastructure=outcome.infrastructure))

    def _exit(self, tracker: Tracker, exited: JobExited) -> None:
        handle = tracker.run.name
        self.trackers.pop(handle, None)
        self.by_k8s_name.pop(tracker.k8s_name, None)
        self.pods.pop(tracker.k8s_name, None)
        self.pending.discard(handle)
        self.waiting_sync.discard(handle)
        self.counters["jobs_finished"] += 1
        tell_safely(tracker.run.reply_to, exited)
        trace.mark(tracker.k8s_name, "exited")

    # -- cancelling ------------------------------------------------------------------------
    def _stop_job(self, msg: StopJob) -> None:
        tracker = self.trackers.get(msg.name)
        if tracker is None or tracker.cancel_reason is not None:
            return
        tracker.cancel_reason = msg.reason
        self.counters["cancelled"] += 1
        if tracker.state != "creating":  # else deleted once the create answers
            self._delete(tracker)

    def _delete(self, tracker: Tracker) -> None:
        self.calls.delete(tracker.run.name, tracker.k8s_name)

    def _deleted(self, msg: Deleted) -> None:
        tracker = self.trackers.get(msg.handle)
        if tracker is None or tracker.k8s_name != msg.k8s_name:
            return
        if msg.error:
            log.error("could not delete Kubernetes Job %s: %s", msg.k8s_name, msg.error)
        if tracker.cancel_reason is None or tracker.outcome is not None:
            return
        if tracker.pod is None:  # no pod yet: none will come for a deleted Job
            self._decided(tracker, classify.Outcome(None, tracker.cancel_reason))


class K8sActorProxy(ActorMemberMixin, pykka.ActorProxy[K8sActor]):
    describe = proxy_method(K8sActor.describe)
    ping = proxy_method(K8sActor.ping)
    running_jobs = proxy_method(K8sActor.running_jobs)
