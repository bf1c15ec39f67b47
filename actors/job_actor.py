"""JobActor: one job attempt — renders its script, runs it on the backend, records it.

Lives from the BuildActor's LaunchJob until its result and logs are persisted. Tells the
BuildActor twice: ``JobFinished`` as soon as the result is known (so dependents start
without waiting on the database) and ``JobPersisted`` once status and logs are stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, assert_never

import pykka

import store
from actors.base import ConveyorActor, tell_safely
from actors.contexts import BuildContext, prepare_job
from actors.messages import (
    BackendRestarted,
    CancelJob,
    ExitKnown,
    FlushJob,
    JobExited,
    JobFinished,
    JobLaunched,
    JobMessage,
    JobPersisted,
    LaunchJob,
    LaunchPrepared,
    LeaseLost,
    LogsFlushed,
    PrepareLaunch,
    RunJob,
    StepEventSeen,
    StopJob,
    WriteSteps,
)
from actors.services import Services
from observability import metrics, trace
from store.records import StepUpdate
from workflow.expressions import ExpressionError
from workflow.markers import JobOutput, StepFinished, StepStarted, new_nonce
from workflow.model import JobSpec, Plan
from workflow.states import JobStatus, StepStatus

if TYPE_CHECKING:  # the build actor imports this module
    from actors.build_actor import BuildActor

log = logging.getLogger(__name__)


_STEP_STATUS = {
    "success": StepStatus.SUCCEEDED,
    "failure": StepStatus.FAILED,
    "cancelled": StepStatus.CANCELLED,
    "skipped": StepStatus.SKIPPED,
}


def note_launch(build_id: int, key: str) -> None:
    """For benchmarks: the moment a job's RunJob is handed to the backend."""
    if trace.tracing():
        trace.mark(trace.launch_subject(build_id, key), "launch")


class JobActor(ConveyorActor):
    kind = "JobActor"
    stop_on_failure = True  # it leaves the running-jobs gauge

    def __init__(
        self,
        *,
        build: BuildContext,
        plan: Plan,
        job: JobSpec,
        job_row_id: int,
        attempt: int,
        parent: pykka.ActorRef[BuildActor],
        services: Services,
    ) -> None:
        super().__init__(f"build/{build.build_id}/{job.key}")
        self.build = build
        self.plan = plan
        self.job = job
        self.job_row_id = job_row_id
        self.attempt = attempt
        self.parent = parent
        self.services = services
        self.build_id = build.build_id
        self.job_key = job.key
        self.handle = f"b{build.build_id}-j{job_row_id}-a{attempt}"
        self.outputs: dict[str, str] = {}
        self.step_names: dict[int, str] = {}  # display names evaluated by the script
        self.dirty_steps: list[StepUpdate] = []  # step events not yet written
        self.failed_step: StepUpdate | None = None  # the first step that failed the job
        self.early: JobFinished | None = None  # result told before the log was drained
        self.run: RunJob | None = None  # what the backend was asked to run
        self.exit_code: int | None = None
        self.finished_at: datetime | None = None
        self.result: JobFinished | None = None
        self.cancel_reason: str | None = None
        self.state = "pending"  # started ahead of its needs, or just spawned
        self.running_since: float | None = None  # metrics only: job duration
        self.counted_running = False  # in the running-jobs gauge (idle ones are not)

    # -- messages --------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, JobMessage):
            self._handle(message)
            return None
        return super().on_receive(message)

    def _handle(self, message: JobMessage) -> None:
        match message:
            case LaunchJob():
                self._start(message)
            case PrepareLaunch():
                self._prepare(message)
            case StepEventSeen():
                self._step_event(message)
            case JobLaunched():
                self.state = "running"
            case WriteSteps():
                self._write_steps()
            case ExitKnown():
                self._exit_known(message)
            case JobExited():
                self._exited(message)
            case LogsFlushed():
                self._persist(message.note)
            case BackendRestarted():
                self._relaunch()
            case CancelJob():
                self._cancel(message.reason)
            case LeaseLost():
                self._abandon()
            case _:
                assert_never(message)

    def _start(self, message: LaunchJob) -> None:
        if message.launched is not None:  # prepared here, sent by the build at release
            self.run = message.launched
            self._launching()
            self._record_start(resume=False)
            return
        try:
            run = self._render(message.needs, message.resume)
        except (ExpressionError, ValueError) as exc:
            self._finish(JobStatus.FAILED, f"could not prepare the job: {exc}")
            return
        self._launching()
        self.run = run
        # Launch first, record after: the database write stays off the path between a
        # job's need finishing and the job starting. Step events wait in our mailbox.
        note_launch(self.build_id, self.job.key)
        self.services.backend.tell(run)
        self._record_start(message.resume)

    def _launching(self) -> None:
        self.running_since = time.monotonic()  # metrics
        if not self.counted_running:
            self.counted_running = True
            metrics.job_running(+1)
        self.state = "launching"

    def on_stop(self) -> None:
        if self.counted_running:
            self.counted_running = False
            metrics.job_running(-1)

    def _prepare(self, message: PrepareLaunch) -> None:
        """Render the launch ahead, for the needs the build expects; it decides to use it."""
        try:
            run = self._render(message.needs, resume=False)
        except (ExpressionError, ValueError):
            return  # LaunchJob renders again and reports the error
        tell_safely(self.parent, LaunchPrepared(self.job.key, message.needs, run))

    def _render(self, needs: Mapping[str, Mapping[str, Any]], resume: bool) -> RunJob:
        # On resume the backend parses with the nonce of the job's first launch, which it
        # finds on the existing Job (Kubernetes annotation), not this new one.
        nonce = new_nonce()
        workspace = self.services.workspace(self.handle)
        prepared = prepare_job(self.build, self.plan, self.job, needs, workspace, nonce)
        return RunJob(
            build_id=self.build_id,
            job_row_id=self.job_row_id,
            job_key=self.job.key,
            attempt=self.attempt,
            name=self.handle,
            script=prepared.script,
            image=prepared.image,
            env=prepared.env,
            timeout_s=float(self.job.timeout_minutes) * 60,
            nonce=nonce,
            cpu=self.job.resources.cpu,
            memory=self.job.resources.memory,
            reply_to=self.actor_ref,
            resume=resume,
            runs_on=prepared.runs_on,
            release_to=None if self.job.outputs else self.parent,
            container_env=prepared.container_env,
        )

    def _record_start(self, resume: bool) -> None:
        # A resumed job's steps are recorded already (events replay idempotently).
        steps = [] if resume else [(s.index, s.name) for s in self.job.steps]
        store.start_job(self.job_row_id, steps)
        self.services.feed.publish(self.build_id)

    def _step_event(self, message: StepEventSeen) -> None:
        event = message.event
        self.counters["step_events"] += 1
        if isinstance(event, StepStarted):
            self.step_names[event.index] = event.name or self._step_name(event.index)
            update = StepUpdate(event.index, self.step_names[event.index], StepStatus.RUNNING)
        elif isinstance(event, StepFinished):
            update = StepUpdate(
                event.index,
                self.step_names.get(event.index) or self._step_name(event.index),
                _STEP_STATUS.get(event.outcome, StepStatus.FAILED),
                event.reason or _default_step_reason(event),
                event.exit_code,
            )
            if event.conclusion == "failure" and self.failed_step is None:
                self.failed_step = update  # the job's reason names it
        elif isinstance(event, JobOutput):
            self.outputs[event.name] = event.value
            return
        else:
            return
        # Coalesce: a note to ourselves lands behind the events already in the mailbox,
        # so a quick step's start and end (and the next step's start) become one write.
        # A step that runs longer is recorded as soon as the mailbox is drained.
        if not self.dirty_steps:
            self.actor_ref.tell(WriteSteps())
        self.dirty_steps.append(update)

    def _write_steps(self) -> None:
        if self.dirty_steps:
            updates, self.dirty_steps = self.dirty_steps, []
            store.record_steps(self.job_row_id, updates)
            self.services.feed.publish(self.build_id)

    def _relaunch(self) -> None:
        """The backend crashed and was restarted: what it ran for us is unknown to it.

        An adopting backend (Kubernetes) re-attaches to the Job by its name; a local
        process died with the old actor and reported itself cancelled already.
        """
        if self.run is None or self.result is not None or not self.services.backend_adopts:
            return
        self.counters["relaunched"] += 1
        tell_safely(self.services.backend, replace(self.run, resume=True))

    def _step_name(self, index: int) -> str:
        return self.job.steps[index].name if index < len(self.job.steps) else f"step {index}"

    def _exit_known(self, message: ExitKnown) -> None:
        """Release dependents before the log is drained when nothing they see can change.

        Exit 0 means SUCCEEDED whatever the log says; a job that declares no outputs gives
        its dependents nothing more to read from it. The result is persisted as usual
        once the backend reports the log drained.
        """
        if message.exit_code != 0 or self.result is not None or self.early is not None:
            return
        if not message.released and (self.job.outputs or self.cancel_reason is not None):
            return
        self.early = JobFinished(self.job.key, JobStatus.SUCCEEDED.value, "succeeded", {})
        self.finished_at = message.at or store.utcnow()  # its end, as its dependents see it
        self.counters["released_early"] += 1
        if not message.released:  # else the backend told our build directly (fewer hops)
            tell_safely(self.parent, self.early)

    def _exited(self, message: JobExited) -> None:
        if self.early is not None:  # exit 0 was reported before any cancel took effect
            self._finish(JobStatus.SUCCEEDED, "succeeded", exit_code=0)
            return
        if message.cancelled:
            status, reason = JobStatus.CANCELLED, self.cancel_reason or message.reason
        elif message.exit_code == 0:
            status, reason = JobStatus.SUCCEEDED, "succeeded"
        else:
            status = JobStatus.FAILED
            reason = message.reason or f"exit code {message.exit_code}"
            step = self.failed_step
            if step is not None and not message.infrastructure:
                reason = f"step '{step.name}' failed: {step.reason}"
        self._finish(status, reason, exit_code=message.exit_code)

    def _cancel(self, reason: str) -> None:
        if self.cancel_reason is not None or self.result is not None or self.early is not None:
            return  # (an early-released job has succeeded; only its log is being read)
        self.cancel_reason = reason
        self.state = "cancelling"
        tell_safely(self.services.backend, StopJob(self.handle, reason))

    def _abandon(self) -> None:
        self.state = "abandoned: build taken over"
        if not self.services.backend_adopts:
            # A local process is ours alone and the new owner runs the job again: left
            # running, it could complete twice. An adoptable backend's job (Kubernetes) is
            # the one the new owner re-attaches to: leave it alone.
            tell_safely(self.services.backend,
                        StopJob(self.handle, "build taken over by another executor"))
        self.stop()

    def _finish(self, status: JobStatus, reason: str, exit_code: int | None = None) -> None:
        if self.result is not None:
            return
        self.exit_code = exit_code
        if self.early is None:  # else the job ended when ExitKnown said so
            self.finished_at = store.utcnow()
        self.result = JobFinished(self.job.key, status.value, reason, dict(self.outputs))
        metrics.job_finished(status.value, self._ran_for())  # metrics
        self.state = f"{status.value}: flushing logs"
        if self.early is None:
            tell_safely(self.parent, self.result)
        elif self.early.status != self.result.status:  # exit 0 is always success
            log.error("job %s: released as %s but ended %s", self.key,
                      self.early.status, self.result.status)
        try:
            self.services.log.tell(FlushJob(self.job_row_id, self.actor_ref))
        except pykka.ActorDeadError:
            self._persist()

    def _persist(self, note: str = "") -> None:
        assert self.result is not None
        self._write_steps()
        store.finish_job(
            self.job_row_id,
            status=JobStatus(self.result.status),
            # A note flags the job without changing its status (the log was capped).
            reason=f"{self.result.reason} ({note})" if note else self.result.reason,
            exit_code=self.exit_code,
            outputs=self.result.outputs,
            at=self.finished_at,
        )
        self.services.feed.publish(self.build_id)
        tell_safely(self.parent, JobPersisted(self.job.key))
        self.state = self.result.status
        self.stop()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        super().on_failure(exception_type, exception_value, traceback)
        reason = f"internal error: {exception_value!r}"
        tell_safely(self.services.backend, StopJob(self.handle, reason))
        if self.result is None:
            tell_safely(self.parent, JobFinished(self.job.key, JobStatus.FAILED.value, reason))
            metrics.job_finished(JobStatus.FAILED.value, self._ran_for())  # metrics
        try:
            store.update_job(self.job_row_id, status=JobStatus.FAILED, reason=reason, finished=True)
        except store.StoreError:
            log.exception("could not record the failure of %s", self.key)
        tell_safely(self.parent, JobPersisted(self.job.key))

    def _ran_for(self) -> float | None:
        """Seconds since the job went RUNNING (None: it never ran). For metrics."""
        return None if self.running_since is None else time.monotonic() - self.running_since


def _default_step_reason(event: StepFinished) -> str:
    if event.outcome == "success":
        return "succeeded"
    if event.exit_code is not None:
        return f"exit code {event.exit_code}"
    return event.outcome
