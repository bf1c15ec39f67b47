"""The scheduling rules of one build, as a pure state machine (no threads, no I/O).

The BuildActor feeds it events (a job finished, the build was cancelled) and carries out
the actions it returns (start a job, skip or cancel one). Rules are GitHub's: a job runs
when all its needs are decided and its `if` (default `success()`) holds; matrix
`fail-fast` cancels the sibling combinations; `max-parallel` caps a matrix group;
`continue-on-error` jobs never fail the build.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow.conditions import job_should_run
from workflow.dag import Dag
from workflow.model import JobSpec, Plan
from workflow.states import BuildStatus, JobStatus

_RESULT = {
    JobStatus.SUCCEEDED: "success",
    JobStatus.FAILED: "failure",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.SKIPPED: "skipped",
}


@dataclass(frozen=True)
class StartJob:
    key: str


@dataclass(frozen=True)
class FinishUnstarted:
    """Decide a job that never ran: SKIPPED (its `if` was false) or CANCELLED."""

    key: str
    status: JobStatus
    reason: str


@dataclass(frozen=True)
class CancelRunning:
    key: str
    reason: str


Action = StartJob | FinishUnstarted | CancelRunning


@dataclass(frozen=True)
class JobOutcome:
    status: JobStatus
    reason: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    continue_on_error: bool = False


ContextsFor = Callable[[JobSpec, Mapping[str, Mapping[str, Any]]], Mapping[str, Any]]


class BuildScheduler:
    """Decides what happens next in one build.

    ``contexts_for(job, needs)`` returns the expression contexts for a job's `if`
    (github, inputs, matrix, needs...); ``needs`` is the `needs` context built here.
    """

    def __init__(self, plan: Plan, contexts_for: ContextsFor) -> None:
        self.plan = plan
        self.dag = Dag(plan)
        self._contexts_for = contexts_for
        self._jobs = {job.key: job for job in plan.jobs}
        self.outcomes: dict[str, JobOutcome] = {}
        self._results: dict[str, str] = {}  # key -> GitHub result, kept with outcomes
        # Kept up to date as jobs are decided, so an event costs what it touches rather
        # than a scan of the whole (up to 500-job) plan.
        self._undecided_needs = {job.key: len(set(job.needs)) for job in plan.jobs}
        self._ready = {key for key, n in self._undecided_needs.items() if n == 0}
        self.running: set[str] = set()  # started, not finished
        self.cancelled = False
        self.cancel_reason = ""
        self._failed_groups: dict[str, str] = {}  # job_id -> key that failed (fail-fast)

    # -- queries ---------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return not self.running and len(self.outcomes) == len(self._jobs)

    def results(self) -> Mapping[str, str]:
        """key -> GitHub result (success/failure/cancelled/skipped) of decided jobs."""
        return self._results

    def needs_context(self, job: JobSpec) -> dict[str, dict[str, Any]]:
        """The `needs` context of a job: per needed job id, its result and outputs."""
        results = self.results()
        aggregated = self.dag.needs_results(job.key, results)
        context: dict[str, dict[str, Any]] = {}
        for job_id, result in aggregated.items():
            outputs: dict[str, str] = {}
            # Matrix jobs share one `needs.<id>`: later combinations' outputs win, as on GitHub.
            for key in job.needs:
                if self._jobs[key].job_id == job_id and key in self.outcomes:
                    outputs.update(self.outcomes[key].outputs)
            context[job_id] = {"result": result, "outputs": outputs}
        return context

    def expected_needs_context(self, key: str) -> dict[str, dict[str, Any]] | None:
        """The `needs` context ``key`` will get if its needs all succeed, when that is
        known now: none of them declares outputs. Lets its launch be prepared ahead."""
        job = self._jobs[key]
        if any(self._jobs[need].outputs for need in job.needs):
            return None
        ids = dict.fromkeys(self._jobs[need].job_id for need in job.needs)
        return {job_id: {"result": "success", "outputs": {}} for job_id in ids}

    def upcoming(self, key: str) -> list[str]:
        """Undecided jobs that wait for ``key`` (just started): worth preparing to start.

        A hint, not a decision: such a job may still be skipped or cancelled.
        """
        return [dependent for dependent in self.dag.direct_dependents(key)
                if dependent not in self.outcomes and dependent not in self.running]

    def build_outcome(self) -> tuple[BuildStatus, str]:
        failed = [
            key
            for key, out in self.outcomes.items()
            if out.status == JobStatus.FAILED and not out.continue_on_error
        ]
        if self.cancelled:
            return BuildStatus.CANCELLED, self.cancel_reason or "cancelled"
        if failed:
            names = ", ".join(f"'{key}'" for key in failed[:3])
            more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
            return BuildStatus.FAILED, f"job {names}{more} failed"
        return BuildStatus.SUCCEEDED, "all jobs succeeded or were skipped"

    # -- events ----------------------------------------------------------------------
    def restore(self, key: str, outcome: JobOutcome) -> None:
        """Take over a decision made before (build takeover after a crash)."""
        self._decide(key, outcome)

    def next_actions(self) -> list[Action]:
        """Decide every job whose needs are all decided; returns what to do."""
        actions: list[Action] = []
        progressed = True
        while progressed:
            progressed = False
            ready = self.dag.in_order(self._ready - self.running)
            for key in ready:
                job = self._jobs[key]
                if not self._group_has_room(job):
                    continue
                fail_fast_key = self._failed_groups.get(job.job_id)
                if fail_fast_key is not None and job.fail_fast and job.matrix:
                    decision: Action = FinishUnstarted(
                        key, JobStatus.CANCELLED, f"fail-fast: '{fail_fast_key}' failed"
                    )
                else:
                    needs = self.needs_context(job)
                    contexts = self._contexts_for(job, needs)
                    run, reason = job_should_run(
                        job, self.dag.needs_results(key, self.results()), contexts,
                        cancelled=self.cancelled,
                    )
                    if run:
                        decision = StartJob(key)
                    elif self.cancelled:
                        decision = FinishUnstarted(key, JobStatus.CANCELLED, reason)
                    else:
                        decision = FinishUnstarted(key, JobStatus.SKIPPED, reason)
                if isinstance(decision, FinishUnstarted):
                    self._decide(key, JobOutcome(decision.status, decision.reason))
                    progressed = True
                else:
                    self.running.add(key)
                actions.append(decision)
        return actions

    def job_finished(self, key: str, outcome: JobOutcome) -> list[Action]:
        """Record a finished job; returns cancellations (fail-fast) then new decisions.

        Only a running job finishes: a repeated result is ignored (nothing to do).
        """
        if key not in self.running:
            return []
        self.running.discard(key)
        self._decide(key, outcome)
        actions: list[Action] = []
        job = self._jobs[key]
        if (
            outcome.status == JobStatus.FAILED
            and not outcome.continue_on_error
            and job.matrix
            and job.fail_fast
            and job.job_id not in self._failed_groups
        ):
            self._failed_groups[job.job_id] = key
            for other in sorted(self.running):
                if self._jobs[other].job_id == job.job_id:
                    actions.append(CancelRunning(other, f"fail-fast: '{key}' failed"))
        actions.extend(self.next_actions())
        return actions

    def cancel(self, reason: str) -> list[Action]:
        """Cancel the build: running jobs are stopped, undecided ones are cancelled."""
        if self.cancelled:
            return []
        self.cancelled = True
        self.cancel_reason = reason
        actions: list[Action] = [CancelRunning(key, reason) for key in sorted(self.running)]
        actions.extend(self.next_actions())
        return actions

    # -- helpers ---------------------------------------------------------------------
    def _decide(self, key: str, outcome: JobOutcome) -> None:
        first = key not in self.outcomes
        self.outcomes[key] = outcome
        self._results[key] = self._result(outcome)
        self._ready.discard(key)
        if first:
            for dependent in self.dag.direct_dependents(key):
                self._undecided_needs[dependent] -= 1
                if self._undecided_needs[dependent] == 0 and dependent not in self.outcomes:
                    self._ready.add(dependent)

    def _group_has_room(self, job: JobSpec) -> bool:
        if job.max_parallel is None:
            return True
        in_group = sum(1 for key in self.running if self._jobs[key].job_id == job.job_id)
        return in_group < job.max_parallel

    @staticmethod
    def _result(outcome: JobOutcome) -> str:
        if outcome.status == JobStatus.FAILED and outcome.continue_on_error:
            return "success"
        return _RESULT.get(outcome.status, "failure")


def continues_on_error(job: JobSpec) -> bool:
    """`continue-on-error` may be a bool or an expression (evaluated with the matrix)."""
    value = job.continue_on_error
    if isinstance(value, bool):
        return value
    from workflow.expressions import ExpressionError, evaluate, to_bool

    try:
        return to_bool(evaluate(value, {"matrix": dict(job.matrix), "inputs": {}, "github": {}}))
    except ExpressionError:
        return False
