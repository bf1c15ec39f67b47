"""BuildActor: one build — claims it, expands the DAG, runs its jobs, finishes it.

The scheduling rules live in the pure ``BuildScheduler``; this actor carries out its
decisions (spawn JobActors, record skipped/cancelled jobs) and feeds it events.

A job is launched in one of three ways, all ending in one ``RunJob`` to the backend:

1. cold: its JobActor is started here when the job may run, and told ``LaunchJob``; it
   renders the launch and tells the backend ``RunJob`` itself;
2. warm: its JobActor was started ahead, idle, by the launcher thread (``Warmed``; see
   warm_jobs.py) while its needs ran — or, for the build's first jobs, started off this
   thread and run on arrival (``Phase.STARTING``) — and is told ``LaunchJob`` the same way;
3. prepared: the warm JobActor also rendered its launch ahead for the needs it expected
   (``PrepareLaunch`` → ``LaunchPrepared``); if the needs came out so, this actor tells
   the backend that ``RunJob`` itself, a hop less, and the JobActor
   ``LaunchJob(launched=…)`` only to record it.

A takeover (``resume``) always goes cold or warm: the launch must re-attach, not start.

A job's end reaches this actor in one of three ways:

1. ``JobFinished`` from its JobActor once the backend told it ``JobExited`` (the output
   is drained): the usual way, and the only one for a failure, a cancellation or a job
   that declares outputs;
2. ``JobFinished`` from the backend itself, to ``RunJob.release_to``, when it sees exit 0
   while the output still drains (Kubernetes): only for a job that declares no outputs,
   so nothing its dependents read can change. It then tells the JobActor ``ExitKnown``;
3. ``JobFinished`` from the JobActor on that ``ExitKnown`` when the backend could not
   tell this actor itself (``released`` false).

In each case the dependents are released at once; ``JobPersisted`` follows from the
JobActor once the job's row and log are written, and the build ends only after every
job's has come (no job ``Phase.RUNNING``). A repeated ``JobFinished`` is a duplicate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, assert_never

import pykka

import store
import workflow
from actors.base import ConveyorActor, tell_safely
from actors.build_rows import job_rows
from actors.build_state import (
    Action,
    BuildScheduler,
    CancelRunning,
    FinishUnstarted,
    JobOutcome,
    StartJob,
    continues_on_error,
)
from actors.contexts import BuildContext, job_if_contexts
from actors.job_actor import JobActor, note_launch
from actors.job_phase import JobPhases, Phase
from actors.messages import (
    BuildFinished,
    BuildMessage,
    CancelJob,
    CancelRequested,
    JobExited,
    JobFinished,
    JobPersisted,
    LaunchJob,
    LaunchPrepared,
    LeaseLost,
    PrepareLaunch,
    RunJob,
    SlotGranted,
    StartBuild,
    Warmed,
    WarmFailed,
)
from actors.services import Services
from actors.slots import JobSlots
from actors.warm_jobs import WarmJobs
from broker.base import Delivery
from observability import metrics
from observability.timings import BuildTimings
from runtime_config import LEASE_S
from store.records import BuildRecord, JobRecord
from workflow.errors import WorkflowInvalid
from workflow.model import JobSpec
from workflow.states import BuildStatus, JobStatus

if TYPE_CHECKING:  # the supervisor imports this module
    from actors.supervisor import Supervisor

log = logging.getLogger(__name__)


class BuildActor(ConveyorActor):
    kind = "BuildActor"
    stop_on_failure = True  # its launcher and idle JobActors go with it

    def __init__(
        self,
        build_id: int,
        *,
        parent: pykka.ActorRef[Supervisor],
        services: Services,
        slots: JobSlots,
        lease_s: float = LEASE_S,
        run: int = 0,
    ) -> None:
        super().__init__(f"build/{build_id}")
        self.build_id = build_id
        self.run = run  # the supervisor's number for this actor, told back when it ends
        self.parent = parent
        self.services = services
        self.slots = slots
        self.lease_s = lease_s
        self.scheduler: BuildScheduler | None = None
        self.context: BuildContext | None = None
        self.rows: dict[str, JobRecord] = {}
        # Each job from the moment it may run until persisted (job_phase.py).
        self.phases: JobPhases[pykka.ActorRef[JobActor]] = JobPhases()
        self.warm = WarmJobs(f"build-{build_id}-launcher")  # actors started ahead
        self.resuming: set[str] = set()  # jobs to re-attach to after a takeover
        self.finished = False
        self.began = False  # StartBuild handled: a repeated one is a duplicate
        self.taken_over = False  # from a dead executor: its jobs go ahead for job slots
        self._delivery: Delivery | None = None  # until acked
        self.timings = BuildTimings()  # metrics only: queue time, dependency release
        self.state = "claiming"

    # -- messages --------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, BuildMessage):
            self._handle(message)
            return None
        return super().on_receive(message)

    def _handle(self, message: BuildMessage) -> None:
        match message:
            case StartBuild():
                self._start(message)
            case JobFinished():
                self._job_finished(message)
            case JobPersisted():
                self.phases.persisted(message.key)
                self._maybe_finish()
            case SlotGranted():
                self._slot_granted(message.key)
            case Warmed():
                self._warmed(message)
            case WarmFailed():
                self.warm.started(message.key)
                if self.phases.of(message.key) is Phase.STARTING:  # start it here (and fail)
                    self._begin(message.key, self._job_starter(message.key)(), None)
            case LaunchPrepared():
                if self.warm.add_prepared(message):
                    self.counters["launches_prepared"] += 1
            case CancelRequested():
                if self.scheduler is not None:
                    self._apply(self.scheduler.cancel(message.reason))
                    self._maybe_finish()
            case LeaseLost():
                self._lease_lost()
            case _:
                assert_never(message)

    def _start(self, message: StartBuild) -> None:
        if self.began:  # a repeated StartBuild: its message duplicates ours
            if message.delivery is not None:
                message.delivery.ack()
            return
        self.began = True
        self._delivery = message.delivery
        claim = store.claim(self.build_id, self.services.owner, self.lease_s)
        # The lease in the database now covers the build: never hold the message for
        # the build's whole duration (RabbitMQ's consumer timeout).
        if message.delivery is not None:
            message.delivery.ack()
            self._delivery = None
        if claim is None:
            self.state = "not ours"
            self._stop_with(BuildStatus.RUNNING, "claimed elsewhere or already finished")
            return
        if claim.kind is store.ClaimKind.HELD:
            # Our own live lease: another BuildActor of this executor runs the build (or
            # ran it and died). Never take a build over from ourselves: its jobs may still
            # run here. Once nobody renews the lease, it is an orphan like any other.
            self.state = "not ours"
            self.counters["held_already"] += 1
            self._stop_with(BuildStatus.RUNNING, "held already by this executor")
            return
        self.taken_over = claim.kind is store.ClaimKind.TAKEN_OVER
        build = claim.build
        self.state = "planning"
        try:
            self._plan(build)
        except WorkflowInvalid as exc:
            errors = "; ".join(e.format("workflow") for e in exc.errors[:5])
            self._finish_build(BuildStatus.ERROR, f"invalid workflow snapshot: {errors}")
            return
        self.state = "running"
        # The first jobs' actors are started by the launcher, not here: a result that
        # arrives meanwhile (a quick first job) need not wait for twenty thread starts.
        self._apply(self._scheduler().next_actions(), first=True)
        self._maybe_finish()

    def _plan(self, build: BuildRecord) -> None:
        yaml_text = store.get_snapshot(self.build_id)
        # No github context here: `github.job` and friends differ per job, so templates
        # using it stay for the job actor to evaluate.
        plan, inputs = workflow.load_for_build(
            yaml_text, {k: str(v) for k, v in build.inputs.items()})
        self.context = BuildContext(
            build_id=build.id,
            number=build.number,
            attempt=build.attempt,
            pipeline=build.pipeline_name,
            ref=build.ref,
            sha=build.sha,
            triggered_by=build.triggered_by,
            inputs=inputs,
            workflow=plan.name,
        )
        context = self.context
        self.scheduler = BuildScheduler(
            plan, lambda job, needs: job_if_contexts(context, job, needs)
        )
        rows = job_rows(self.build_id, build.attempt, self.scheduler,
                        owner=self.services.owner, adopts=self.services.backend_adopts)
        self.rows, self.resuming = rows.latest, rows.resuming
        self.counters["jobs_retried"] += rows.retried

    def _scheduler(self) -> BuildScheduler:
        assert self.scheduler is not None
        return self.scheduler

    def _apply(self, actions: list[Action], first: bool = False) -> None:
        queued: list[int] = []
        for action in actions:
            if isinstance(action, StartJob):
                self.timings.job_ready(action.key)  # metrics
                if not self.slots.request(self.actor_ref, self.key, action.key,
                                          urgent=self.taken_over):
                    self.phases.queue(action.key)
                    queued.append(self.rows[action.key].id)
                elif first and self.warm.request(action.key, self._job_starter(action.key),
                                                 self.actor_ref):
                    self.phases.starting(action.key)
                else:
                    self._spawn(action.key)
            elif isinstance(action, FinishUnstarted):
                self.warm.cool(action.key)
                self._update(action.key, action.status, action.reason, finished=True)
                metrics.job_finished(action.status.value)  # metrics: never got a JobActor
            elif isinstance(action, CancelRunning):
                if self.phases.unstarted(action.key):
                    self.phases.cancel_unstarted(action.key)
                    self.slots.release(self.key, action.key)
                    self.warm.cool(action.key)
                    self._update(action.key, JobStatus.CANCELLED, action.reason, finished=True)
                    metrics.job_finished(JobStatus.CANCELLED.value)  # metrics: never started
                    self._apply(self._scheduler().job_finished(
                        action.key, JobOutcome(JobStatus.CANCELLED, action.reason)))
                elif (running := self.phases.ref(action.key)) is not None:
                    tell_safely(running, CancelJob(action.reason))
        if queued:  # one write for a wide build's many jobs held by the cap
            store.queue_jobs(queued, f"waiting for a free job slot ({self.slots.limit} in use)")
            self.services.feed.publish(self.build_id)

    def _spawn(self, key: str) -> None:
        idle, prepared = self.warm.take(key)
        self._begin(key, idle or self._job_starter(key)(), prepared)

    def _begin(self, key: str, ref: pykka.ActorRef[JobActor],
               prepared: LaunchPrepared | None) -> None:
        scheduler = self._scheduler()
        job = scheduler.plan.job(key)
        self.phases.run(key, ref)
        self.counters["jobs_started"] += 1
        self.timings.job_started(key, job.needs)  # metrics
        resume = key in self.resuming
        self.resuming.discard(key)
        needs = scheduler.needs_context(job)
        if prepared is None or resume or prepared.needs != needs \
                or not self._launch(key, ref, needs, prepared.run):
            ref.tell(LaunchJob(needs, resume=resume))
        self._warm_up(key)

    def _launch(self, key: str, ref: pykka.ActorRef[JobActor], needs: Any,
                run: RunJob) -> bool:
        """Send the launch the job's actor prepared, saving a hop on the release path."""
        try:
            backend = self.services.backend
        except pykka.ActorDeadError:
            return False
        if not backend.is_alive():
            return False
        ref.tell(LaunchJob(needs, launched=run))  # first: it hears before the backend
        note_launch(self.build_id, key)
        if not tell_safely(backend, run):
            tell_safely(ref, JobExited(None, "the job backend stopped before the job started",
                                       infrastructure=True))
        return True

    def _job_starter(self, key: str) -> Callable[[], pykka.ActorRef[JobActor]]:
        scheduler = self._scheduler()
        assert self.context is not None
        row = self.rows[key]
        return partial(
            JobActor.start,
            build=self.context,
            plan=scheduler.plan,
            job=scheduler.plan.job(key),
            job_row_id=row.id,
            attempt=row.attempt,
            parent=self.actor_ref,
            services=self.services,
        )

    def _warm_up(self, key: str) -> None:
        """Have the JobActors of the jobs that wait on ``key`` (now running) started."""
        for dependent in self._scheduler().upcoming(key):
            self.warm.request(dependent, self._job_starter(dependent), self.actor_ref)

    def _slot_granted(self, key: str) -> None:
        phase = self.phases.of(key)
        if phase is Phase.QUEUED:
            self._spawn(key)
        elif phase is not None or (
                self.scheduler is not None and key in self.scheduler.outcomes):
            self.counters["duplicates"] += 1  # a repeated grant of a slot it holds or held
        else:  # withdrawn meanwhile: pass it on
            self.slots.release(self.key, key)

    def _warmed(self, message: Warmed) -> None:
        known = self.phases.ref(message.key) or self.warm.idle.get(message.key)
        if known is not None and known.actor_urn == message.ref.actor_urn:
            self.counters["duplicates"] += 1  # a repeated Warmed: that actor is in use
            return
        if self.phases.of(message.key) is Phase.STARTING:
            self.warm.started(message.key)
            self._begin(message.key, message.ref, None)
            return
        scheduler = self._scheduler()
        wanted = not self.finished and self.phases.ref(message.key) is None \
            and message.key not in scheduler.outcomes
        if not self.warm.arrived(message, wanted):
            self.counters["jobs_warmed_in_vain"] += 1
            return
        self.counters["jobs_warmed"] += 1
        expected = scheduler.expected_needs_context(message.key)
        if expected is not None and message.key not in self.resuming:
            message.ref.tell(PrepareLaunch(expected))

    def _job_finished(self, message: JobFinished) -> None:
        scheduler = self._scheduler()
        if message.key not in scheduler.running:
            self.counters["duplicates"] += 1  # a repeated result: the job is decided
            return
        self.slots.release(self.key, message.key)
        job: JobSpec = scheduler.plan.job(message.key)
        status = JobStatus(message.status)
        continue_on_error = status == JobStatus.FAILED and continues_on_error(job)
        outcome = JobOutcome(status, message.reason, message.outputs, continue_on_error)
        self.counters[f"jobs_{status.value.lower()}"] += 1
        self.timings.job_finished(message.key)  # metrics: dependents' release latency
        self._apply(scheduler.job_finished(message.key, outcome))
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        scheduler = self.scheduler
        if scheduler is None or self.finished or self.phases.running() or not scheduler.done:
            return
        status, reason = scheduler.build_outcome()
        self._finish_build(status, reason)

    def _finish_build(self, status: BuildStatus, reason: str) -> None:
        # Fence the terminal write: renewing proves we still hold the build, and nobody can
        # take it over until the renewed lease runs out, long after the write below. An
        # executor whose lease expired (the database was unreachable for longer than a
        # lease) must not finish a build that its new owner is running again.
        if not store.renew_leases(self.services.owner, [self.build_id], self.lease_s):
            self._lease_lost()
            return
        try:
            # Final only when no attempt of any of its jobs still runs, anywhere.
            store.finish_build(self.build_id, status, reason,
                               settled=status != BuildStatus.ERROR)
        except store.JobsStillRunning as exc:
            log.error("not finishing build %s: %s", self.build_id, exc)
            self.counters["unsettled"] += 1
            self._stop_with(BuildStatus.RUNNING, str(exc))
            return
        metrics.build_finished(status.value, time.monotonic() - self.started_at)  # metrics
        self.services.feed.publish(self.build_id)
        self._stop_with(status, reason)

    def _lease_lost(self) -> None:
        if self.finished:
            return
        log.error("build %s was taken over by another executor: stopping our work on it",
                  self.build_id)
        self.counters["leases_lost"] += 1
        for ref in self.phases.running():
            tell_safely(ref, LeaseLost(self.build_id))
        self.phases.clear()
        self._stop_with(BuildStatus.RUNNING, "taken over by another executor")

    def _stop_with(self, status: BuildStatus, reason: str) -> None:
        self.finished = True
        self.state = status.value
        self.slots.release_owner(self.key)
        tell_safely(self.parent, BuildFinished(self.build_id, status.value, reason, self.run))
        self.stop()

    def _update(self, key: str, status: JobStatus, reason: str, finished: bool = False) -> None:
        store.update_job(self.rows[key].id, status=status, reason=reason, finished=finished)
        self.services.feed.publish(self.build_id)

    def on_start(self) -> None:
        self.warm.start()

    def on_stop(self) -> None:
        self.warm.stop()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        super().on_failure(exception_type, exception_value, traceback)
        if self._delivery is not None:
            # Failed before claiming (the database may be down): let the broker redeliver
            # it; its delivery limit dead-letters a message that fails every time. The
            # supervisor hears first that this actor is gone: were the redelivery first,
            # it would ack it as a duplicate of a build it runs, and the message would be
            # lost instead of dead-lettered.
            self.slots.release_owner(self.key)
            tell_safely(self.parent, BuildFinished(self.build_id, BuildStatus.QUEUED.value,
                                                   "requeued", self.run))
            self._delivery.reject(requeue=True)
            return
        reason = f"internal error: {exception_value!r}"
        for ref in self.phases.running():
            tell_safely(ref, CancelJob(reason))
        try:
            store.finish_build(self.build_id, BuildStatus.ERROR, reason)
            metrics.build_finished(BuildStatus.ERROR.value,  # metrics
                                   time.monotonic() - self.started_at)
            self.services.feed.publish(self.build_id)
        except store.StoreError:
            log.exception("could not record the failure of build %s", self.build_id)
        self.slots.release_owner(self.key)
        tell_safely(self.parent,
                    BuildFinished(self.build_id, BuildStatus.ERROR.value, reason, self.run))
