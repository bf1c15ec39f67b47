"""Compiles expressions that need run-time contexts into POSIX shell.

Inside a job, only the runner script knows the ``steps`` context (outcomes and outputs
of earlier steps), ``job.status`` and the status functions. Every other part of an
expression is folded to a constant when the script is rendered; what is left must be
one of the supported run-time forms:

- ``steps.<id>.outputs.<name>``, ``steps.<id>.outcome``, ``steps.<id>.conclusion``,
  ``job.status`` (run-time strings; a missing output is the empty string);
- ``success() failure() always() cancelled()``;
- ``! && ||`` (with GitHub's value semantics for ``a || 'default'``);
- comparisons ``== != < <= > >=`` with GitHub's loose rules (strings compared ignoring
  ASCII case, a string next to a number/boolean/null compared as a number);
- ``contains()``, ``startsWith()``, ``endsWith()``;
- ``env.<name>`` and ``env['<name>']`` when the caller passes a :class:`RuntimeEnv`
  (steps after the first, whose ``env`` sees ``$GITHUB_ENV`` values written by earlier
  steps). Elsewhere, and in function calls not listed above, ``env`` is the value known
  when the script is rendered.

The shell state the compiled code reads is defined by the runner prelude
(``workflow.runner_template``): ``$_cv_fail``/``$_cv_canc`` (0/1), ``$_cv_oc_<i>`` and
``$_cv_cc_<i>`` (outcome/conclusion of step ``i``), ``$_cv_o_<i>_<k>`` (outputs),
``$_cv_ev_<k>`` (env values, see :attr:`Compiler.env_vars`) and the helpers ``_cv_cmp``
and ``_cv_jobstatus``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from workflow.expressions import (
    STATUS_FUNCTIONS,
    ExpressionError,
    Node,
    called_functions,
    evaluate_node,
    parse,
    to_bool,
    to_string,
)
from workflow.expressions.analysis import walk
from workflow.expressions.ast import Call, Compare, Index, Literal, Logical, NamedValue, Not
from workflow.expressions.ast import Property as Prop
from workflow.expressions.coercion import Kind, compare, fold_case, kind_of, to_number
from workflow.expressions.evaluator import lookup_key
from workflow.shellwords import (
    ScriptError,
    literal_word,
    sh_quote,
    split_templates,
    unwrap_template,
)

_STATUS_COND = {
    "success": '[ "$_cv_fail$_cv_canc" = 00 ]',
    "failure": '[ "$_cv_fail$_cv_canc" = 10 ]',
    "cancelled": '[ "$_cv_canc" = 1 ]',
    "always": "true",
}
_STRING_FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class Str:
    """A run-time string: ``word`` is a double-quoted shell expansion of it."""

    word: str
    lower: bool = False  # holds only lowercase ASCII (outcomes, job status, booleans)


@dataclass(frozen=True)
class Bool:
    """A run-time boolean: ``cond`` is a shell command list that succeeds when true."""

    cond: str


Operand = Const | Str | Bool


@dataclass(frozen=True)
class RuntimeEnv:
    """How a step's ``env.<name>`` is read at run time (GitHub's precedence): the step's
    own ``env`` (``step``: a constant or a run-time string), else the latest value an
    earlier step wrote to ``$GITHUB_ENV`` (tracked in :attr:`Compiler.env_vars`), else
    the workflow and job env the script starts with."""

    step: Mapping[str, Const | Str]


class ShellText(NamedTuple):
    setup: list[str]  # shell lines to run first
    word: str  # one shell word expanding to the text
    literal: str | None  # the text itself when it needs no run-time value


def is_job_status(node: Node) -> bool:
    if isinstance(node, Prop):
        key: Any = node.name
    elif isinstance(node, Index) and isinstance(node.index, Literal):
        key = node.index.value
    else:
        return False
    obj = node.obj
    return isinstance(obj, NamedValue) and obj.name == "job" and str(key).lower() == "status"


def is_env_ref(node: Node) -> bool:
    """``env.<name>`` or ``env[<key>]``."""
    return (
        isinstance(node, Prop | Index)
        and isinstance(node.obj, NamedValue)
        and node.obj.name == "env"
    )


def needs_runtime(node: Node, runtime_env: bool = False) -> bool:
    """Whether the value of ``node`` is only known while the job runs (``env`` values
    count when ``runtime_env``)."""
    for part in walk(node):
        if isinstance(part, NamedValue) and part.name == "steps":
            return True
        if isinstance(part, Call) and part.name in STATUS_FUNCTIONS:
            return True
        if is_job_status(part):
            return True
        if runtime_env and is_env_ref(part):
            return True
    return False


class Compiler:
    """Compiles the expressions of one job. ``step_ids`` maps each step id to its
    index; ``outputs`` collects the ``(step index, folded output name)`` pairs the
    compiled code reads, with the shell variable holding each; ``env_vars`` the
    ``env`` names read at run time, with the shell variable that must hold each one's
    current value (the caller initialises it and updates it on ``$GITHUB_ENV``)."""

    def __init__(self, step_ids: Mapping[str, int]) -> None:
        self._step_ids = {k.lower(): v for k, v in step_ids.items()}
        self.outputs: dict[tuple[int, str], str] = {}
        self.env_vars: dict[str, str] = {}
        self._env: RuntimeEnv | None = None
        self._temps = 0
        self._setup: list[str] = []
        self._contexts: Mapping[str, Any] = {}
        self._where = ""
        self._text = ""

    # -- public entry points ------------------------------------------------------

    def condition(
        self,
        expression: str,
        contexts: Mapping[str, Any],
        where: str,
        env: RuntimeEnv | None = None,
    ) -> tuple[list[str], str, bool]:
        """``(setup, cond, has_status_function)`` for an ``if:``-style expression:
        run ``setup`` lines, then ``cond`` succeeds when the expression is truthy."""
        node = self._parse(unwrap_template(expression, where), contexts, where, env)
        cond = self._cond(node)
        has_status = bool(called_functions(node) & STATUS_FUNCTIONS)
        return self._take_setup(), cond, has_status

    def template(
        self,
        text: str,
        contexts: Mapping[str, Any],
        where: str,
        env: RuntimeEnv | None = None,
    ) -> ShellText:
        """``text`` with each ``${{ }}`` replaced by its value as a string, as shell:
        after the ``setup`` lines, ``word`` expands to it."""
        words: list[str] = []
        literal = ""  # constant text not yet turned into a word
        dynamic = False
        last = 0
        for start, end, inner in split_templates(text, where):
            literal += text[last:start]
            value = self._value(self._parse(inner, contexts, where, env))
            if isinstance(value, Const):
                literal += to_string(value.value)
            else:
                words += [literal_word(literal, where), value.word]
                literal, dynamic = "", True
            last = end
        literal += text[last:]
        words.append(literal_word(literal, where))
        word = "".join(w for w in words if w) or "''"
        return ShellText(self._take_setup(), word, None if dynamic else literal)

    def constant(self, text: str, contexts: Mapping[str, Any], where: str) -> Any:
        """The value of ``text`` (a template, or one whole ``${{ }}`` giving any type)
        when it does not need run-time contexts; otherwise a ScriptError."""
        templates = split_templates(text, where)
        whole = len(templates) == 1 and templates[0][:2] == (0, len(text))
        parts: list[str] = []
        last = 0
        for start, end, inner in templates:
            node = self._parse(inner, contexts, where)
            if needs_runtime(node):
                raise ScriptError(
                    f"{where}: '{inner}' is not supported at run time: this field is "
                    "needed before the job starts, so it cannot use steps, job.status or "
                    "status functions"
                )
            value = self._fold(node)
            if whole:
                return value
            parts.extend((text[last:start], to_string(value)))
            last = end
        return "".join([*parts, text[last:]])

    # -- compilation ---------------------------------------------------------------

    def _parse(
        self, text: str, contexts: Mapping[str, Any], where: str, env: RuntimeEnv | None = None
    ) -> Node:
        self._contexts, self._where, self._text, self._env = contexts, where, text, env
        names = {*contexts, "steps", "job"}
        try:
            return parse(text, names=names, functions=STATUS_FUNCTIONS)
        except ExpressionError as exc:
            raise ScriptError(f"{where}: {exc}") from None

    def _take_setup(self) -> list[str]:
        setup, self._setup = self._setup, []
        return setup

    def _temp(self) -> str:
        self._temps += 1
        return f"_cv_t{self._temps}"

    def _unsupported(self) -> ScriptError:
        return ScriptError(
            f"{self._where}: '{self._text}' is not supported at run time (only "
            "steps.<id>.outputs.<name>, steps.<id>.outcome/conclusion, job.status, status "
            "functions, ! && ||, comparisons and contains/startsWith/endsWith can use "
            "run-time values)"
        )

    def _dynamic(self, node: Node) -> bool:
        return needs_runtime(node, self._env is not None)

    def _fold(self, node: Node) -> Any:
        try:
            return evaluate_node(node, self._contexts, expression=self._text)
        except ExpressionError as exc:
            raise ScriptError(f"{self._where}: {exc}") from None

    def _operand(self, node: Node) -> Operand:
        if not self._dynamic(node):
            return Const(self._fold(node))
        if isinstance(node, Call) and node.name in STATUS_FUNCTIONS:
            return Bool(_STATUS_COND[node.name])
        if self._boolish(node):
            return Bool(self._cond(node))
        if isinstance(node, Logical):
            left, right = self._operand(node.left), self._operand(node.right)
            return self._logical_value(node.op, left, right)
        if is_job_status(node):
            self._setup.append("_cv_jobstatus")
            return Str('"$_cv_js"', lower=True)
        if self._env is not None and isinstance(node, Prop | Index) and is_env_ref(node):
            return self._env_ref(node, self._env)
        if not needs_runtime(node):
            # env inside a form the shell cannot compute (format(), toJSON(), …): the
            # value known when the script was rendered.
            return Const(self._fold(node))
        return self._steps_ref(node)

    def _boolish(self, node: Node) -> bool:
        """Whether ``node`` always gives a boolean (then it compiles to a condition)."""
        if not self._dynamic(node):
            return isinstance(self._fold(node), bool)
        if isinstance(node, Call):
            return node.name in STATUS_FUNCTIONS or node.name in _STRING_FUNCTIONS
        if isinstance(node, Logical):
            return self._boolish(node.left) and self._boolish(node.right)
        return isinstance(node, Not | Compare)

    def _steps_ref(self, node: Node) -> Str:
        path: list[str] = []
        current = node
        while isinstance(current, Prop | Index):
            if isinstance(current, Prop):
                path.append(current.name)
            elif needs_runtime(current.index):
                raise self._unsupported()
            else:
                path.append(to_string(self._fold(current.index)))
            current = current.obj
        if not (isinstance(current, NamedValue) and current.name == "steps"):
            raise self._unsupported()
        path.reverse()
        if not path or len(path) > 3:
            raise self._unsupported()
        index = self._step_ids.get(path[0].lower())
        if index is None:
            known = ", ".join(sorted(self._step_ids)) or "none"
            raise ScriptError(
                f"{self._where}: '{self._text}' refers to step id '{path[0]}', which is "
                f"not a step of this job (step ids: {known})"
            )
        field = path[1].lower() if len(path) > 1 else ""
        if len(path) == 2 and field in ("outcome", "conclusion"):
            prefix = "oc" if field == "outcome" else "cc"
            return Str(f'"$_cv_{prefix}_{index}"', lower=True)
        if len(path) == 3 and field == "outputs":
            key = (index, fold_case(path[2]))
            var = self.outputs.setdefault(key, f"_cv_o_{index}_{len(self.outputs)}")
            return Str(f'"${var}"')
        raise self._unsupported()

    def _env_ref(self, node: Prop | Index, env: RuntimeEnv) -> Const | Str:
        if isinstance(node, Prop):
            key = node.name
        elif needs_runtime(node.index):
            raise self._unsupported()
        else:
            key = to_string(self._fold(node.index))
        found, value = lookup_key(env.step, key)
        if found:
            assert isinstance(value, Const | Str)
            return value
        # $GITHUB_ENV names are case-sensitive, as in GitHub's env context on Linux.
        var = self.env_vars.setdefault(key, f"_cv_ev_{len(self.env_vars)}")
        return Str(f'"${var}"')

    def _value(self, node: Node) -> Const | Str:
        operand = self._operand(node)
        if isinstance(operand, Bool):
            temp = self._temp()
            self._setup.append(f"if {operand.cond}; then {temp}=true; else {temp}=false; fi")
            return Str(f'"${temp}"', lower=True)
        return operand

    def _logical_value(self, op: str, left: Operand, right: Operand) -> Const | Str:
        if isinstance(left, Const):  # then only the right side is run-time
            return left if to_bool(left.value) == (op == "||") else self._as_value(right)
        temp = self._temp()
        lval, rval = self._as_value(left), self._as_value(right)
        first, second = (lval, rval) if op == "||" else (rval, lval)
        self._setup.append(
            f"if {_truthy(left)}; then {temp}={_word(first)}; else {temp}={_word(second)}; fi"
        )
        both_lower = all(isinstance(v, Str) and v.lower for v in (lval, rval))
        return Str(f'"${temp}"', lower=both_lower)

    def _as_value(self, operand: Operand) -> Const | Str:
        if isinstance(operand, Bool):
            temp = self._temp()
            self._setup.append(f"if {operand.cond}; then {temp}=true; else {temp}=false; fi")
            return Str(f'"${temp}"', lower=True)
        return operand

    def _cond(self, node: Node) -> str:
        if not self._dynamic(node):
            return "true" if to_bool(self._fold(node)) else "false"
        if isinstance(node, Not):
            return f"! {{ {self._cond(node.operand)}; }}"
        if isinstance(node, Logical):
            return self._logical_cond(node)
        if isinstance(node, Compare):
            return self._compare(node.op, self._operand(node.left), self._operand(node.right))
        if isinstance(node, Call) and node.name in _STRING_FUNCTIONS:
            return self._string_function(node)
        return _truthy(self._operand(node))

    def _logical_cond(self, node: Logical) -> str:
        is_and = node.op == "&&"
        if not self._dynamic(node.left):
            truth = to_bool(self._fold(node.left))
            if truth != is_and:  # false && x, true || x
                return "true" if truth else "false"
            return self._cond(node.right)
        left = self._cond(node.left)
        if not self._dynamic(node.right):
            truth = to_bool(self._fold(node.right))
            if truth == is_and:  # x && true, x || false
                return left
            return "true" if truth else "false"
        return f"{{ {left} {node.op} {self._cond(node.right)}; }}"

    def _compare(self, op: str, left: Operand, right: Operand) -> str:
        if isinstance(left, Const) and isinstance(right, Const):
            return "true" if compare(op, left.value, right.value) else "false"
        for dyn, other, flip in ((left, right, False), (right, left, True)):
            if isinstance(dyn, Bool) and isinstance(other, Const):
                pair = (True, other.value) if not flip else (other.value, True)
                when_true = compare(op, *pair)
                pair = (False, other.value) if not flip else (other.value, False)
                when_false = compare(op, *pair)
                if when_true == when_false:
                    return "true" if when_true else "false"
                return dyn.cond if when_true else f"! {{ {dyn.cond}; }}"
        if isinstance(left, Bool) and isinstance(right, Bool) and op in ("==", "!="):
            return self._compare(op, self._as_value(left), self._as_value(right))
        if isinstance(left, Bool) or isinstance(right, Bool):
            lnum, rnum = (self._bool_number(x) for x in (left, right))
            return f"_cv_cmp {sh_quote(op)} n {lnum} {rnum}"
        const = left if isinstance(left, Const) else right if isinstance(right, Const) else None
        if const is None:
            return f"_cv_cmp {sh_quote(op)} s {_word(left)} {_word(right)}"
        dyn = right if const is left else left
        assert isinstance(dyn, Str)
        kind = kind_of(const.value)
        if kind in (Kind.ARRAY, Kind.OBJECT):  # never equal to a string, never ordered
            return "true" if op == "!=" else "false"
        if kind is Kind.STRING:
            if op in ("==", "!=") and dyn.lower:
                test = "=" if op == "==" else "!="
                return f"[ {dyn.word} {test} {sh_quote(str(const.value).lower())} ]"
            return f"_cv_cmp {sh_quote(op)} s {_word(left)} {_word(right)}"
        number = to_number(const.value)
        if math.isnan(number):
            return "true" if op == "!=" else "false"
        num_word = _number_word(number)
        lw, rw = (num_word, dyn.word) if const is left else (dyn.word, num_word)
        return f"_cv_cmp {sh_quote(op)} n {lw} {rw}"

    def _bool_number(self, operand: Operand) -> str:
        if isinstance(operand, Bool):
            temp = self._temp()
            self._setup.append(f"if {operand.cond}; then {temp}=1; else {temp}=0; fi")
            return f'"${temp}"'
        if isinstance(operand, Const):
            number = to_number(operand.value)
            return _number_word(number) if not math.isnan(number) else "'x'"
        return operand.word

    def _string_function(self, node: Call) -> str:
        first, second = (self._operand(arg) for arg in node.args)
        is_array = isinstance(first, Const) and kind_of(first.value) is Kind.ARRAY
        if node.name == "contains" and isinstance(first, Const) and is_array:
            conds = [self._compare("==", second, Const(item)) for item in first.value]
            return "{ " + " || ".join(conds or ["false"]) + "; }"
        for arg in (first, second):
            if isinstance(arg, Const) and kind_of(arg.value) in (Kind.ARRAY, Kind.OBJECT):
                return "false"
        a, b = self._as_value(first), self._as_value(second)
        return f"_cv_cmp {node.name} s {_word(a)} {_word(b)}"


def _truthy(operand: Operand) -> str:
    if isinstance(operand, Bool):
        return operand.cond
    if isinstance(operand, Const):
        return "true" if to_bool(operand.value) else "false"
    return f"[ -n {operand.word} ]"


def _number_word(number: float) -> str:
    """A number as the run-time helper parses it (as GitHub spells infinities)."""
    if math.isinf(number):
        return "'Infinity'" if number > 0 else "'-Infinity'"
    return sh_quote(repr(number))


def _word(operand: Operand) -> str:
    if isinstance(operand, Const):
        return sh_quote(to_string(operand.value))
    if isinstance(operand, Str):
        return operand.word
    raise TypeError("a run-time boolean has no word; use _as_value first")
