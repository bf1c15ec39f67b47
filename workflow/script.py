"""Renders one job as a POSIX ``sh`` runner script (the job's single process or pod).

The script runs the steps in order like a GitHub runner and reports through the
markers of :mod:`workflow.markers`. Templates that only need the contexts known when the
job starts are evaluated here; those that need ``steps`` or ``job.status`` are
compiled into shell by :mod:`workflow.shellcond`. So are ``env.<name>`` references in
every step after the first, because an earlier step may have set the variable through
``$GITHUB_ENV`` (GitHub's ``env`` context: workflow env, then job env, then
``$GITHUB_ENV``, then the step's own ``env``); whole-``env`` uses (``toJSON(env)``),
``env`` in functions the shell cannot compute (``format()``, ``join()``…) and the
``shell`` and ``with`` keys see the env known when the script is rendered. Values never
become shell code: they
are single-quoted, except in ``run``, where (as on GitHub) a template's value is pasted
into the step's script text, which is written to a file, not to this script.

Deliver the script as a file or as ``sh -c`` text (mind the 128 KiB limit of one
argument on Linux); it reads nothing from stdin. Its cwd is the workspace.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from workflow.expressions import ExpressionError, find_templates, to_string
from workflow.expressions.evaluator import lookup_key
from workflow.markers import check_nonce, encode_field
from workflow.model import JobSpec, Plan, StepSpec
from workflow.runner_template import EPILOGUE, PRELUDE
from workflow.shellcond import Compiler, Const, RuntimeEnv, ShellText, Str
from workflow.shellwords import ScriptError, literal_word, sh_quote, unwrap_template

__all__ = ["ScriptError", "render_job_script"]

# The environment variable names the script can set (a shell's names).
SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# The GITHUB_* and RUNNER_* variables GitHub sets in every job (from the contexts'
# properties of the same names). GITHUB_WORKSPACE and RUNNER_TEMP are the script's own
# directories; GITHUB_ACTION is set per step; GITHUB_ENV, _OUTPUT, _PATH and
# _STEP_SUMMARY per step by the runner prelude.
GITHUB_VARIABLES = (
    "actor", "api_url", "base_ref", "event_name", "graphql_url", "head_ref", "job", "ref",
    "ref_name", "ref_protected", "ref_type", "repository", "repository_owner",
    "retention_days", "run_attempt", "run_id", "run_number", "server_url", "sha",
    "triggering_actor", "workflow",
)
RUNNER_VARIABLES = ("arch", "environment", "name", "os")  # no tool cache: left unset
_CHECKOUT = "actions/checkout"
# `persist-credentials` is accepted and has no effect: the checkout never stores
# credentials (it has none), which is what most workflows ask with `false`.
CHECKOUT_INPUTS = ("repository", "ref", "path", "fetch-depth", "persist-credentials")
_SETSID = "exec $_cv_setsid"
_SHELLS = {
    "bash": (f'{_SETSID} bash --noprofile --norc -eo pipefail "$_cv_f"', ".sh"),
    "sh": (f'{_SETSID} sh -e "$_cv_f"', ".sh"),
    "python": (
        "if command -v python >/dev/null 2>&1; then _cv_py=python; else _cv_py=python3; fi\n"
        f'  {_SETSID} "$_cv_py" "$_cv_f"',
        ".py",
    ),
    "pwsh": (f"{_SETSID} pwsh -command \". '$_cv_f'\"", ".ps1"),
}
# GitHub's default when no shell is given anywhere: bash -e, or sh -e without bash.
_DEFAULT_SHELL = (
    "if command -v bash >/dev/null 2>&1; then _cv_sh=bash; else _cv_sh=sh; fi\n"
    f'  {_SETSID} "$_cv_sh" -e "$_cv_f"',
    ".sh",
)


def render_job_script(job: JobSpec, plan: Plan, contexts: Mapping[str, Any], nonce: str) -> str:
    """The runner script of ``job``. ``contexts`` are the expression contexts known when
    the job starts (``github``, ``env`` — workflow and job env merged and evaluated —,
    ``inputs``, ``matrix``, ``needs``, ``strategy``, ``job``, ``runner``, ``vars``,
    ``secrets``); ``nonce`` comes from :func:`workflow.markers.new_nonce`.

    Raises :class:`ScriptError` naming the step and the expression when a template
    cannot be evaluated or needs run-time values in an unsupported way."""
    return _Renderer(job, plan, contexts).render(check_nonce(nonce))


class _Renderer:
    def __init__(self, job: JobSpec, plan: Plan, contexts: Mapping[str, Any]) -> None:
        # Steps always have an env context, if only an empty one (as on GitHub).
        self.job, self.plan = job, plan
        self.contexts: Mapping[str, Any] = {**contexts, "env": contexts.get("env") or {}}
        ids: dict[str, int] = {}
        for step in job.steps:
            if step.id is not None:
                if step.id.lower() in ids:
                    raise ScriptError(f"{self.where(step)}: duplicate step id '{step.id}'")
                ids[step.id.lower()] = step.index
        self.compiler = Compiler(ids)
        self.actions = action_names(job.steps)
        self.functions: list[str] = []
        self.names: dict[tuple[int, str], str] = {}

    def where(self, step: StepSpec | None, field: str = "") -> str:
        base = f"jobs.{self.job.job_id}"
        if step is not None:
            base += f".steps[{step.index}]"
            if step.id:
                base += f" ('{step.id}')"
        return f"{base}.{field}" if field else base

    def render(self, nonce: str) -> str:
        prelude = (
            PRELUDE.replace("@NONCE@", nonce)
            .replace("@SKIP_CANCELLED@", encode_field("skipped: the job was cancelled"))
            .replace("@SKIP_FAILED@", encode_field("skipped: an earlier step failed"))
        )
        body = [self.step_block(step) for step in self.job.steps]
        body.append(self.job_outputs())
        return "\n".join(
            [
                prelude,
                self.exports(),
                self.env_handler(),
                *self.functions,
                *self.output_handlers(),
                *body,
                EPILOGUE,
            ]
        )

    # -- environment ---------------------------------------------------------------

    def exports(self) -> str:
        lines = [
            "export GITHUB_ACTIONS=true CI=true",
            'export GITHUB_WORKSPACE="$_cv_ws" RUNNER_TEMP="$_cv_rt"',
        ]
        for prefix, context, keys in (
            ("GITHUB_", "github", GITHUB_VARIABLES),
            ("RUNNER_", "runner", RUNNER_VARIABLES),
        ):
            values = self.contexts.get(context) or {}
            for key in keys:
                value = values.get(key)
                if isinstance(value, str | int | float | bool):
                    lines.append(_export(prefix + key.upper(), to_string(value)))
        for key, value in (self.contexts.get("env") or {}).items():
            lines.append(_export(self.env_name(key, None), to_string(value)))
        return "\n".join(lines)

    def env_handler(self) -> str:
        """``_cv_envhook NAME VALUE``, called for each ``$GITHUB_ENV`` entry once it is
        exported: keeps the current value of each name an expression reads at run
        time, which starts as the workflow/job env value (empty when there is none)."""
        env = self.contexts.get("env") or {}
        lines = []
        for name, var in self.compiler.env_vars.items():
            found, value = lookup_key(env, name)
            lines.append(f"{var}={sh_quote(to_string(value) if found else '')}")
        lines.append("_cv_envhook() {")
        if self.compiler.env_vars:
            lines.append("  case $1 in")
            lines += [f"    {sh_quote(n)}) {v}=$2 ;;" for n, v in self.compiler.env_vars.items()]
            lines.append("  esac")
        else:
            lines.append("  :")
        lines.append("}")
        return "\n".join(lines)

    def env_name(self, key: str, step: StepSpec | None) -> str:
        if not SHELL_NAME.match(key):
            raise ScriptError(
                f"{self.where(step, 'env')}: '{key}' is not a valid environment variable "
                "name (letters, digits and '_', not starting with a digit)"
            )
        return key

    def own_contexts(self, step: StepSpec) -> Mapping[str, Any]:
        """The job's contexts as ``step`` sees them: ``github.action`` is its own."""
        github = {**(self.contexts.get("github") or {}), "action": self.actions[step.index]}
        return {**self.contexts, "github": github}

    def step_contexts(self, step: StepSpec) -> Mapping[str, Any]:
        """The contexts for a step's run/name/with: ``env`` includes the step's env
        where its values are known before the job runs."""
        own = self.own_contexts(step)
        env = dict(own.get("env") or {})
        for key, text in step.env.items():
            try:
                env[key] = self.compiler.constant(text, own, "")
            except ScriptError:
                continue  # needs run-time values: not visible as env.<key>
        return {**own, "env": env}

    def runtime_env(self, step: StepSpec | None) -> RuntimeEnv | None:
        """How ``env`` is read in ``step`` (``None``: the job outputs) when an earlier
        step may have written ``$GITHUB_ENV``; ``None`` when nothing can have."""
        first = self.job.steps[0] if self.job.steps else None
        if first is None or step is first:
            return None
        return RuntimeEnv({})

    def step_env(
        self, step: StepSpec, env: RuntimeEnv | None, lines: list[str]
    ) -> tuple[RuntimeEnv | None, dict[str, str]]:
        """The step's ``env`` values: ``(the RuntimeEnv its other keys read, the word
        of each value)``. Values known only at run time are computed into variables by
        lines appended to ``lines`` (before the step's ``if:``, as GitHub evaluates
        them first); they see the env of earlier steps, not their own step's."""
        words: dict[str, str] = {}
        values: dict[str, Const | Str] = {}
        for n, (key, text) in enumerate(step.env.items()):
            name = self.env_name(key, step)
            where = self.where(step, f"env.{key}")
            setup, word, literal = self.compiler.template(
                text, self.own_contexts(step), where, env
            )
            if literal is None:
                var = f"_cv_se_{step.index}_{n}"
                lines += setup
                lines.append(f"{var}={word}")
                words[name], values[key] = f'"${var}"', Str(f'"${var}"')
            else:
                words[name], values[key] = word, Const(literal)
        return (RuntimeEnv(values) if env is not None else None), words

    # -- steps -----------------------------------------------------------------------

    def step_block(self, step: StepSpec) -> str:
        i = step.index
        ctx = self.step_contexts(step)
        # Whether the job was cancelled when the step was considered: see _cv_run.
        lines = [f"# step {i}", f"_cv_oc_{i}=; _cv_cc_{i}=; _cv_c0=$_cv_canc"]
        env, env_words = self.step_env(step, self.runtime_env(step), lines)
        if_text = step.if_ if step.if_ is not None and step.if_.strip() else "true"
        setup, cond, has_status = self.compiler.condition(if_text, ctx, self.where(step, "if"), env)
        lines += setup
        false_reason = sh_quote(encode_field(f"if: {unwrap_template(if_text, '')} was false"))
        if has_status:
            lines.append(f"if ! {{ {cond}; }}; then _cv_skip {i} {false_reason}")
        else:
            success = '[ "$_cv_fail$_cv_canc" = 00 ]'
            lines.append(f'if ! {success}; then _cv_skipped; _cv_skip {i} "$_cv_why"')
            if cond != "true":
                lines.append(f"elif ! {{ {cond}; }}; then _cv_skip {i} {false_reason}")
        lines.append("else")
        name = self.display_name(step, ctx, env)
        lines += name.setup
        if name.literal is None:
            lines.append(f"_cv_enc {name.word}")
            encoded = "$_cv_e"
        else:
            encoded = encode_field(name.literal)
        lines.append(f'_cv_mark "step-start::{i}::{encoded}"')
        command, ext = self.step_command(step, ctx)
        body_setup, body = self.step_body(step, ctx, env)
        lines += body_setup
        lines.append(f"printf '%s' {body} >\"$_cv_tmp/s{i}{ext}\"")
        lines.append(self.continue_on_error(step, ctx, lines, env))
        seconds, whole, label = _timeout(step, self.where(step, "timeout-minutes"))
        lines.append(f"_cv_begin {i}")
        self.functions.append(self.step_function(step, ctx, command, ext, env, env_words))
        lines.append(f"_cv_run _cv_step_{i} {seconds} {whole}")
        lines.append(f"_cv_post {i} _cv_out_{i}")
        lines.append(f'_cv_end {i} "$_cv_coe" {label}')
        lines.append("fi")
        return "\n".join(lines)

    def display_name(
        self, step: StepSpec, ctx: Mapping[str, Any], env: RuntimeEnv | None
    ) -> ShellText:
        """The step's name with its templates evaluated. Only the default name
        ``Run <first line>`` can hold an unterminated ``${{`` (half of a multi-line
        template, which ``validate`` accepts): it is shown as written."""
        where = self.where(step, "name")
        try:
            find_templates(step.name)
        except ExpressionError:
            return ShellText([], literal_word(step.name, where) or "''", step.name)
        return self.compiler.template(step.name, ctx, where, env)

    def continue_on_error(
        self, step: StepSpec, ctx: Mapping[str, Any], lines: list[str], env: RuntimeEnv | None
    ) -> str:
        """The line setting ``_cv_coe`` (0/1); setup lines of an expression go to ``lines``."""
        value = step.continue_on_error
        if isinstance(value, bool):
            return f"_cv_coe={1 if value else 0}"
        where = self.where(step, "continue-on-error")
        setup, cond, _ = self.compiler.condition(value, ctx, where, env)
        lines += setup
        return f"if {cond}; then _cv_coe=1; else _cv_coe=0; fi"

    def step_body(
        self, step: StepSpec, ctx: Mapping[str, Any], env: RuntimeEnv | None
    ) -> tuple[list[str], str]:
        if step.uses is not None:
            return [], sh_quote(self.checkout_body(step, ctx))
        if step.run is None:
            raise ScriptError(f"{self.where(step)}: a step needs 'run' or 'uses'")
        text = self.compiler.template(step.run, ctx, self.where(step, "run"), env)
        return text.setup, text.word

    def step_command(self, step: StepSpec, ctx: Mapping[str, Any]) -> tuple[str, str]:
        if step.uses is not None:
            return _SHELLS["sh"]
        spec = step.shell or self.job.defaults_shell or self.plan.defaults_shell
        if spec is None:
            return _DEFAULT_SHELL
        where = self.where(step, "shell")
        spec = str(self.compiler.constant(spec, ctx, where)).strip()
        if spec in _SHELLS:
            return _SHELLS[spec]
        if problem := shell_problem(spec):
            raise ScriptError(f"{where}: {problem}")
        words = shlex.split(spec)
        if not any("{0}" in w for w in words):
            words.append("{0}")
        quoted = ['"$_cv_f"'.join(sh_quote(p) for p in w.split("{0}")) for w in words]
        return f"{_SETSID} " + " ".join(quoted), ""

    def step_function(
        self,
        step: StepSpec,
        ctx: Mapping[str, Any],
        command: str,
        ext: str,
        env: RuntimeEnv | None,
        env_words: Mapping[str, str],
    ) -> str:
        i = step.index
        lines = [f"_cv_step_{i}() {{", f'  _cv_f="$_cv_tmp/s{i}{ext}"']
        directory = None
        if step.uses is None:
            directory = (
                step.working_directory
                or self.job.defaults_working_directory
                or self.plan.defaults_working_directory
            )
        if directory:
            setup, word, _ = self.compiler.template(
                directory, ctx, self.where(step, "working-directory"), env
            )
            lines += [f"  {s}" for s in setup]
            lines.append(
                f'  cd "$_cv_ws" && cd {word} || {{ printf \'conveyor: cannot enter the '
                f"working-directory %s\\n' {word}; exit 1; }}"
            )
        lines.append(f"  {_export('GITHUB_ACTION', self.actions[i])}")
        for name, word in env_words.items():
            lines.append(f"  {name}={word}; export {name}")
        lines.append(f"  {command}")
        lines.append("}")
        return "\n".join(lines)

    def checkout_body(self, step: StepSpec, ctx: Mapping[str, Any]) -> str:
        assert step.uses is not None
        if step.uses.split("@", 1)[0].lower() != _CHECKOUT:
            raise ScriptError(
                f"{self.where(step, 'uses')}: '{step.uses}' is not supported; only "
                "actions/checkout can be used"
            )
        inputs: dict[str, str] = {}
        for key, text in step.with_.items():
            if problem := checkout_input_problem(key, None):
                raise ScriptError(f"{self.where(step, 'with.' + key)}: {problem}")
            value = self.compiler.constant(text, ctx, self.where(step, "with." + key))
            inputs[key] = to_string(value)
        github = self.contexts.get("github") or {}
        server = to_string(github.get("server_url")) or "https://github.com"
        if inputs.get("repository"):
            repo = inputs["repository"]
            url = repo if ("://" in repo or repo.startswith(("/", "git@"))) else f"{server}/{repo}"
            target = inputs.get("ref", "")
        else:
            # Only a configured repository URL: `github.repository` is the pipeline's
            # name here, not a GitHub owner/repo to guess a URL from.
            url = to_string(github.get("repository_url"))
            target = (
                inputs.get("ref") or to_string(github.get("sha")) or to_string(github.get("ref"))
            )
        if not url:
            return 'echo "no repository configured: skipping checkout"\n'
        dest = inputs.get("path") or "."
        depth = inputs.get("fetch-depth") or "1"
        for key, value in (("path", dest), ("fetch-depth", depth)):
            if problem := checkout_input_problem(key, value):
                raise ScriptError(f"{self.where(step, 'with.' + key)}: {problem}")
        return _CHECKOUT_SCRIPT.format(
            url=sh_quote(url), target=sh_quote(target), dest=sh_quote(dest), depth=int(depth)
        )

    # -- outputs -------------------------------------------------------------------

    def output_handlers(self) -> list[str]:
        """Per step, the handler ``_cv_post`` calls for each output the step writes: it
        keeps the outputs some expression reads, in their shell variables."""
        wanted: dict[int, list[tuple[str, str]]] = {step.index: [] for step in self.job.steps}
        for (index, folded), var in self.compiler.outputs.items():
            wanted.setdefault(index, []).append((folded, var))
        out = []
        for index, pairs in sorted(wanted.items()):
            lines = [f"{var}=" for _, var in pairs]
            lines.append(f"_cv_out_{index}() {{")
            if pairs:
                lines.append("  case $1 in")
                lines += [f"    {_ci_pattern(folded)}) {var}=$2 ;;" for folded, var in pairs]
                lines.append("  esac")
            else:
                lines.append("  :")
            lines.append("}")
            out.append("\n".join(lines))
        return out

    def job_outputs(self) -> str:
        lines = ["# job outputs"]
        env = self.runtime_env(None)
        for key, text in self.job.outputs.items():
            setup, word, _ = self.compiler.template(
                text, self.contexts, self.where(None, f"outputs.{key}"), env
            )
            lines += setup
            lines.append(f"_cv_enc {word}")
            lines.append(f'_cv_mark "output::{encode_field(key)}::$_cv_e"')
        return "\n".join(lines)


def action_names(steps: tuple[StepSpec, ...]) -> dict[int, str]:
    """``github.action`` of each step, as GitHub names them: the step's id, else
    ``__run`` for a script and ``__<owner>_<repo>`` for an action, with ``_2``, ``_3``…
    on the second and later steps of the same kind."""
    seen: dict[str, int] = {}
    names: dict[int, str] = {}
    for step in steps:
        if step.id:
            names[step.index] = step.id
            continue
        if step.uses is None:
            base = "__run"
        else:
            base = "__" + re.sub(r"[^A-Za-z0-9]+", "_", step.uses.split("@", 1)[0]).strip("_")
        seen[base] = seen.get(base, 0) + 1
        names[step.index] = base if seen[base] == 1 else f"{base}_{seen[base]}"
    return names


def shell_problem(spec: str) -> str | None:
    """Why a step cannot run with ``shell: spec`` (a known name or a command)."""
    spec = spec.strip()
    if spec in _SHELLS:
        return None
    if spec in ("cmd", "powershell"):
        return f"shell '{spec}' only exists on Windows runners"
    try:
        words = shlex.split(spec)
    except ValueError as exc:
        return f"cannot split shell '{spec}': {exc}"
    return None if words else "empty shell"


def checkout_input_problem(key: str, value: str | None) -> str | None:
    """Why actions/checkout cannot take input ``key`` (with ``value``, when known)."""
    if key not in CHECKOUT_INPUTS:
        return (
            f"actions/checkout input '{key}' is not supported "
            f"(supported: {', '.join(CHECKOUT_INPUTS)})"
        )
    if key == "path" and value and (value.startswith("/") or ".." in value.split("/")):
        return f"'{value}' is outside the workspace"
    if key == "fetch-depth" and value and not value.isdigit():
        return f"'{value}' is not a number"
    return None


def _export(name: str, value: str) -> str:
    if "\0" in value:
        raise ScriptError(f"environment variable {name} contains a NUL character")
    return f"{name}={sh_quote(value)}; export {name}"


def _ci_pattern(folded: str) -> str:
    """A ``case`` pattern matching ``folded`` ignoring ASCII case."""
    out = []
    for char in folded:
        if char.isascii() and char.isalpha():
            out.append(f"[{char.lower()}{char.upper()}]")
        else:
            out.append(sh_quote(char))
    return "".join(out) or "''"


def _timeout(step: StepSpec, where: str) -> tuple[str, str, str]:
    """``(seconds, whole seconds, label)`` as shell words; empty words without one."""
    minutes = step.timeout_minutes
    if minutes is None:
        return "''", "''", "''"
    if not minutes > 0:
        raise ScriptError(f"{where}: must be a positive number of minutes, got {minutes}")
    seconds = minutes * 60
    whole = int(-(-seconds // 1))
    # Equal words tell the watchdog a whole-second sleep will do (no probe of `sleep`).
    exact = str(whole) if whole == seconds else f"{seconds:.3f}"
    return sh_quote(exact), str(whole), sh_quote(f"{minutes:g}m")


_CHECKOUT_SCRIPT = """\
url={url}; target={target}; dest={dest}; depth={depth}
if ! command -v git >/dev/null 2>&1; then
  echo "conveyor: git is not installed in the job image: cannot check out $url"; exit 127
fi
echo "Checking out $url at ${{target:-the default branch}} into $dest"
mkdir -p "$dest"; cd "$dest"
[ -d .git ] || git init -q .
git remote remove origin >/dev/null 2>&1 || true
git remote add origin "$url"
if [ "$depth" -gt 0 ]; then shallow="--depth=$depth"; else shallow=; fi
if git -c protocol.version=2 fetch -q --no-tags $shallow origin "${{target:-HEAD}}"; then
  git -c advice.detachedHead=false checkout -q --force FETCH_HEAD
else
  echo "fetching $target alone failed: fetching every branch and tag"
  git fetch -q origin '+refs/heads/*:refs/remotes/origin/*' '+refs/tags/*:refs/tags/*'
  git -c advice.detachedHead=false checkout -q --force "$target" ||
    git -c advice.detachedHead=false checkout -q --force "origin/$target"
fi
git log -1 --format='HEAD is now at %h %s'
"""
