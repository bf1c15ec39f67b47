"""The plan: a validated, matrix-expanded workflow, as plain frozen values.

Strings that may hold ``${{ }}`` templates are kept as written (``Template`` below);
they are evaluated when the job starts, with the contexts known then (``needs``,
``github``, ``inputs``, ``matrix``, ``strategy``, ``env``...). Matrix values are already
substituted in name, runs-on, container, env and steps only when the
whole template depends on nothing but ``matrix``/``inputs``/``github`` — otherwise the
engine evaluates it at run time with ``matrix`` in its contexts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

Template = str  # a string that may contain ${{ expression }} parts
Expression = str  # an expression without the ${{ }} wrapper (as in `if:`)

EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return EMPTY


DEFAULT_JOB_TIMEOUT_MINUTES = 360.0
DEFAULT_SHELL = "bash"


@dataclass(frozen=True)
class InputSpec:
    """A declared `on.workflow_dispatch.inputs.<name>`."""

    name: str
    type: str = "string"  # string | boolean | number | choice | environment
    description: str = ""
    required: bool = False
    default: Any = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resources:
    """Conveyor extension `resources: {cpu, memory}` in Kubernetes quantity syntax."""

    cpu: str | None = None
    memory: str | None = None


@dataclass(frozen=True)
class StepSpec:
    index: int  # 0-based position in the job
    name: Template  # display name; defaults to "Run <first line of run>"
    id: str | None = None
    run: Template | None = None  # the script; None only for `uses: actions/checkout`
    uses: str | None = None  # only actions/checkout@... is accepted
    with_: Mapping[str, Template] = field(default_factory=_empty)
    shell: str | None = None  # None: the job/workflow default, else bash
    env: Mapping[str, Template] = field(default_factory=_empty)
    if_: Expression | None = None  # None means success()
    working_directory: Template | None = None
    continue_on_error: bool | Expression = False
    timeout_minutes: float | None = None


@dataclass(frozen=True)
class JobSpec:
    key: str  # unique, stable: "build" or "test (3.11, ubuntu)"
    job_id: str  # the id under `jobs:` ("test")
    name: Template  # display name
    needs: tuple[str, ...] = ()  # keys of expanded jobs this one waits for
    needs_ids: tuple[str, ...] = ()  # the job ids as written (the `needs` context keys)
    # this combination's values ({} when no matrix)
    matrix: Mapping[str, Any] = field(default_factory=_empty)
    if_: Expression | None = None  # None means success()
    runs_on: Any = None  # str or list of labels, possibly with templates
    image: Template | None = None  # container image (`container` or `container.image`)
    container_env: Mapping[str, Template] = field(default_factory=_empty)
    # job env (the workflow's env is in Plan.env)
    env: Mapping[str, Template] = field(default_factory=_empty)
    defaults_shell: str | None = None
    defaults_working_directory: str | None = None
    timeout_minutes: float = DEFAULT_JOB_TIMEOUT_MINUTES
    continue_on_error: bool | Expression = False
    resources: Resources = field(default_factory=Resources)
    steps: tuple[StepSpec, ...] = ()
    outputs: Mapping[str, Template] = field(default_factory=_empty)
    # strategy: the group is every expanded job with the same job_id
    fail_fast: bool = True
    max_parallel: int | None = None
    matrix_index: int = 0  # strategy.job-index
    matrix_total: int = 1  # strategy.job-total


@dataclass(frozen=True)
class Plan:
    name: str
    jobs: tuple[JobSpec, ...]  # in a topological order
    env: Mapping[str, Template] = field(default_factory=_empty)
    inputs: Mapping[str, InputSpec] = field(default_factory=_empty)
    defaults_shell: str | None = None
    defaults_working_directory: str | None = None

    def job(self, key: str) -> JobSpec:
        return self._by_key[key]

    @cached_property
    def _by_key(self) -> dict[str, JobSpec]:
        # Built on first use (a frozen dataclass may still cache this way); the engine
        # looks jobs up by key on every event of builds of up to 500 jobs.
        return {job.key: job for job in self.jobs}
