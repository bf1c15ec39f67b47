"""What a job can do at run time, checked when the workflow is validated.

The expressions of a step that read run-time values (``steps.*``, ``job.status``, the
status functions, ``env`` after the first step) are compiled into the job's shell
script (:mod:`workflow.shellcond`), which supports only some forms; ``with:`` inputs
are needed before the job starts and cannot read them at all. A workflow that
``validate`` accepts must not stop before its first step, so each such expression is
checked here with :func:`workflow.shellsupport.runtime_problem` and refused at the
file position of the part that cannot run.
"""

from __future__ import annotations

from workflow.diagnostics import Errors
from workflow.expressions import STATUS_FUNCTIONS, ExpressionError, Node, find_templates, parse
from workflow.schema import CHECKOUT_ACTION, ENV_NAME_RE
from workflow.script import (
    CHECKOUT_INPUTS,
    SHELL_NAME,
    checkout_input_problem,
    shell_problem,
)
from workflow.shellcond import needs_runtime
from workflow.shellsupport import RUNTIME_VALUES, runtime_problem
from workflow.validate_expr import condition_text, inner_offset
from workflow.validate_reader import WorkflowDef, as_text, join
from workflow.yamlsafe import YMap, YNode, YScalar, YSeq

_TEMPLATE_FIELDS = ("run", "name", "working-directory")
_CONDITION_FIELDS = ("if", "continue-on-error")


def check_runtime(root: YNode, workflow: WorkflowDef, errors: Errors) -> None:
    """Add an error for each step or job-output expression the job could not run, and
    each environment variable name its script cannot set."""
    if isinstance(root, YMap):
        _env_names(root.get("env"), "env", errors)
        _default_shell(root, "", errors)
    for job_id, job in workflow.jobs.items():
        path = join("jobs", job_id)
        _env_names(job.node.get("env"), join(path, "env"), errors)
        _default_shell(job.node, path, errors)
        _Job(errors, path, job.node).check()


def _default_shell(node: YMap, path: str, errors: Errors) -> None:
    defaults = node.get("defaults")
    run = defaults.get("run") if isinstance(defaults, YMap) else None
    if isinstance(run, YMap):
        _shell(run.get("shell"), join(join(join(path, "defaults"), "run"), "shell"), errors)


def _shell(node: YNode | None, path: str, errors: Errors) -> None:
    """A literal command `shell:` (with `{0}`) the script could not split; names are
    checked by `validate` itself, templates only when the job starts."""
    if not isinstance(node, YScalar) or not isinstance(node.value, str):
        return
    value = node.value
    if "{0}" in value and "${{" not in value and (problem := shell_problem(value)):
        errors.add(node, path, problem)


def _env_names(node: YNode | None, path: str, errors: Errors) -> None:
    if not isinstance(node, YMap):
        return
    for key, entry in node.entries.items():
        if not SHELL_NAME.match(key) and ENV_NAME_RE.match(key):  # else refused already
            errors.add(
                entry.key,
                join(path, key),
                f"'{key}' is not supported yet as an environment variable name: the job's "
                "shell sets only names of letters, digits and '_' not starting with a digit",
            )


class _Job:
    def __init__(self, errors: Errors, path: str, node: YMap) -> None:
        self.errors, self.path, self.node = errors, path, node
        steps = node.get("steps")
        self.steps = [s for s in steps.items] if isinstance(steps, YSeq) else []
        self.ids = [
            ident.value
            for step in self.steps
            if isinstance(step, YMap)
            and isinstance(ident := step.get("id"), YScalar)
            and isinstance(ident.value, str)
        ]

    def check(self) -> None:
        for index, step in enumerate(self.steps):
            if isinstance(step, YMap):
                self.step(step, f"{self.path}.steps[{index}]", runtime_env=index > 0)
        outputs = self.node.get("outputs")
        if isinstance(outputs, YMap):
            for key, entry in outputs.entries.items():
                where = join(join(self.path, "outputs"), key)
                self.template(entry.value, where, runtime_env=bool(self.steps))

    def step(self, step: YMap, path: str, runtime_env: bool) -> None:
        for key in _TEMPLATE_FIELDS:
            if (value := step.get(key)) is not None:
                self.template(value, join(path, key), runtime_env)
        _shell(step.get("shell"), join(path, "shell"), self.errors)
        env = step.get("env")
        _env_names(env, join(path, "env"), self.errors)
        if isinstance(env, YMap):
            for key, entry in env.entries.items():
                self.template(entry.value, join(join(path, "env"), key), runtime_env)
        for key in _CONDITION_FIELDS:
            value = step.get(key)
            if isinstance(value, YScalar) and isinstance(value.value, str):
                found = condition_text(value.value)
                if found is not None:
                    self.expression(found[0], value, found[1], join(path, key), runtime_env, True)
        uses, with_ = step.get("uses"), step.get("with")
        if _is_checkout(uses) and isinstance(with_, YMap):
            for key, entry in with_.entries.items():
                where = join(join(path, "with"), key)
                self.before_start(entry.value, where, f"with.{key}")
                self.checkout_input(key, entry.key, entry.value, where)

    def template(self, node: YNode, path: str, runtime_env: bool) -> None:
        for inner, offset in _templates(node):
            assert isinstance(node, YScalar)
            self.expression(inner, node, offset, path, runtime_env, False)

    def expression(
        self, text: str, scalar: YScalar, offset: int, path: str, runtime_env: bool,
        condition: bool,
    ) -> None:
        tree = _parse(text)
        if tree is None:
            return
        problem = runtime_problem(tree, self.ids, runtime_env=runtime_env, condition=condition)
        if problem is not None:
            at = self.errors.locate(scalar, offset + problem.node.column - 1)
            self.errors.add(at, path, problem.message)

    def before_start(self, node: YNode, path: str, label: str) -> None:
        """A value the job needs before it starts: no run-time values at all."""
        for inner, offset in _templates(node):
            assert isinstance(node, YScalar)
            tree = _parse(inner)
            if tree is not None and needs_runtime(tree):
                self.errors.add(
                    self.errors.locate(node, offset),
                    path,
                    f"`{label}` is needed before the job starts, so {RUNTIME_VALUES} are not "
                    "supported there yet",
                )


    def checkout_input(self, key: str, key_node: YNode, value: YNode, path: str) -> None:
        """What the checkout step refuses when it is rendered (a literal value only:
        a template's value is known when the job starts)."""
        literal = None
        if isinstance(value, YScalar) and not (
            isinstance(value.value, str) and "${{" in value.value
        ):
            literal = as_text(value.value)
        problem = checkout_input_problem(key, literal)
        if problem is not None:
            self.errors.add(key_node if key not in CHECKOUT_INPUTS else value, path, problem)


def _is_checkout(uses: YNode | None) -> bool:
    return (
        isinstance(uses, YScalar)
        and isinstance(uses.value, str)
        and uses.value.split("@", 1)[0].strip().lower() == CHECKOUT_ACTION
    )


def _templates(node: YNode) -> list[tuple[str, int]]:
    """Each non-empty ``${{ }}`` of a string scalar: (expression, offset in the value)."""
    if not isinstance(node, YScalar) or not isinstance(node.value, str):
        return []
    text = node.value
    if "${{" not in text:
        return []
    try:
        spans = find_templates(text)
    except ExpressionError:
        return []  # reported by the expression checks
    return [(inner, inner_offset(text, start, end)) for start, end, inner in spans if inner]


def _parse(text: str) -> Node | None:
    """The tree, or None when the expression has errors the other checks report."""
    try:
        return parse(text, functions=STATUS_FUNCTIONS)
    except ExpressionError:
        return None
