"""What the supported subset of GitHub Actions syntax holds: keys, contexts and limits.

One table per level says, for every key, whether Conveyor uses it, ignores it (it only
means something on GitHub) or rejects it with a message saying what to do instead.
"""

from __future__ import annotations

import re

MAX_JOBS = 500  # after matrix expansion
MAX_COMBINATIONS = 256  # per matrix
MAX_STEPS = 100  # per job
MAX_ID_LENGTH = 100
MAX_NAME_LENGTH = 256
# GitHub keeps a timeout as a 32-bit number of minutes; a larger one cannot be honoured.
MAX_TIMEOUT_MINUTES = 2**31 - 1
MAX_ERRORS = 200  # reported at once; a hostile file does not get a megabyte of errors

ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
ENV_NAME_RE = re.compile(r"^[^=\s\x00]+$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")

WORKFLOW_KEYS = frozenset({"name", "env", "defaults", "jobs"})
# Keys that mean something only on GitHub: checked as GitHub checks them, then ignored.
WORKFLOW_IGNORED = frozenset({"on", "run-name", "permissions", "concurrency", "description"})
WORKFLOW_REJECTED: dict[str, str] = {}

JOB_KEYS = frozenset(
    {
        "name",
        "needs",
        "if",
        "runs-on",
        "container",
        "env",
        "steps",
        "timeout-minutes",
        "continue-on-error",
        "strategy",
        "outputs",
        "resources",
        "defaults",
    }
)
JOB_IGNORED = frozenset({"permissions", "concurrency", "cancel-timeout-minutes"})
_REUSABLE = "reusable workflows are not supported: copy the called workflow's jobs here"
JOB_REJECTED = {
    "uses": f"`uses` on a job calls a reusable workflow; {_REUSABLE}",
    "with": f"`with` passes inputs to a reusable workflow; {_REUSABLE}",
    "secrets": "`secrets` (passing secrets to a reusable workflow) is not supported: pass "
    "values as build inputs and read them with `${{ inputs.<name> }}`",
    "services": "service containers (`services`) are not supported: start the service in "
    "a step, or use a container image that bundles it",
    "environment": "deployment environments (`environment`) are not supported: remove it "
    "(who may trigger a build is set by the pipeline's members)",
    "snapshot": "custom runner images (`snapshot`) are not supported: remove it",
}

REUSABLE_KEYS = frozenset({"with", "secrets"})  # parts of a job-level `uses` call

STEP_KEYS = frozenset(
    {
        "run",
        "uses",
        "with",
        "name",
        "id",
        "env",
        "if",
        "shell",
        "working-directory",
        "continue-on-error",
        "timeout-minutes",
    }
)
_BACKGROUND = "background steps are not supported: run the steps one after another"
STEP_REJECTED = {
    "parallel": "parallel step groups (`parallel:`) are not supported: list the group's "
    "steps one after another (they run in order)",
    "background": f"`background` runs a step alongside the next ones; {_BACKGROUND}",
    "wait": f"`wait` waits for background steps; {_BACKGROUND}",
    "wait-all": f"`wait-all` waits for background steps; {_BACKGROUND}",
    "cancel": f"`cancel` stops a background step; {_BACKGROUND}",
}
CHECKOUT_ACTION = "actions/checkout"
USES_FORMAT = "Expected format {org}/{repo}[/path]@ref"
SHELLS = frozenset({"bash", "sh", "python"})

CONTAINER_KEYS = frozenset({"image", "env"})
CONTAINER_REJECTED = {
    "credentials": "registry `credentials` are not supported: use an image the cluster "
    "can pull (configure imagePullSecrets on the executor's namespace)",
    "ports": "container `ports` are not supported (there are no service containers)",
    "volumes": "container `volumes` are not supported: keep files in the workspace",
    "options": "docker `options` are not supported: use the job's `resources` for cpu and memory",
}
STRATEGY_KEYS = frozenset({"matrix", "fail-fast", "max-parallel"})
RESOURCES_KEYS = frozenset({"cpu", "memory"})
DEFAULTS_KEYS = frozenset({"run"})
DEFAULTS_RUN_KEYS = frozenset({"shell", "working-directory"})
INPUT_KEYS = frozenset({"description", "required", "default", "type", "options"})
INPUT_TYPES = frozenset({"string", "boolean", "number", "choice", "environment"})

# Which contexts each location may use (GitHub's context availability table, reduced to
# the contexts Conveyor has).
ALL_CONTEXTS = frozenset(
    {"github", "env", "inputs", "matrix", "strategy", "needs", "steps", "job", "runner"}
)
CTX_WORKFLOW_ENV = frozenset({"github", "inputs"})
CTX_JOB_IF = frozenset({"github", "needs", "inputs"})
CTX_JOB = frozenset({"github", "needs", "strategy", "matrix", "inputs"})
CTX_CONTAINER_ENV = CTX_JOB | {"job", "runner", "env"}
CTX_DEFAULTS = CTX_JOB | {"env"}
CTX_STRATEGY = frozenset({"github", "inputs"})
CTX_OUTPUTS = ALL_CONTEXTS
CTX_STEP = ALL_CONTEXTS

# Keys Conveyor ignores but GitHub checks: their contexts as GitHub allows them (`vars`
# included: the value is never evaluated here).
CTX_WORKFLOW_CONCURRENCY = frozenset({"github", "inputs", "vars"})
CTX_JOB_CONCURRENCY = CTX_WORKFLOW_CONCURRENCY | {"needs", "strategy", "matrix"}
CTX_RUN_NAME = CTX_WORKFLOW_CONCURRENCY
CTX_CALL_INPUT_DEFAULT = CTX_WORKFLOW_CONCURRENCY
CTX_CALL_OUTPUT = CTX_WORKFLOW_CONCURRENCY | {"jobs"}

# GitHub's `permissions` scopes and the levels each accepts.
_ANY_LEVEL = ("read", "write", "none")
PERMISSION_SHORTHANDS = ("read-all", "write-all")
PERMISSION_SCOPES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "actions",
            "artifact-metadata",
            "attestations",
            "checks",
            "contents",
            "deployments",
            "discussions",
            "issues",
            "packages",
            "pages",
            "pull-requests",
            "repository-projects",
            "security-events",
            "statuses",
        ),
        _ANY_LEVEL,
    ),
    "copilot-requests": ("write", "none"),
    "id-token": ("write", "none"),
    "models": ("read", "none"),
    "vulnerability-alerts": ("read", "none"),
}
CONCURRENCY_KEYS = frozenset({"group", "cancel-in-progress", "queue"})
CONCURRENCY_QUEUES = ("single", "max")
MAX_CONCURRENCY_GROUP = 400  # characters, GitHub's limit for a literal group
WORKFLOW_CALL_KEYS = frozenset({"inputs", "secrets", "outputs"})
CALL_INPUT_KEYS = frozenset({"description", "type", "required", "default"})
CALL_INPUT_TYPES = ("boolean", "number", "string")
CALL_SECRET_KEYS = frozenset({"description", "required"})
CALL_OUTPUT_KEYS = frozenset({"description", "value"})

# Values known when the plan is built; templates using only these are substituted then.
PLAN_TIME_CONTEXTS = frozenset({"matrix", "strategy", "inputs", "github"})

UNSUPPORTED_CONTEXTS = {
    "secrets": "the `secrets` context is not supported: pass values as build inputs "
    "(`inputs.<name>`)",
    "vars": "the `vars` context is not supported: use workflow `env` or build inputs",
    "jobs": "the `jobs` context exists only in reusable workflows, which are not supported",
}

GENERAL_FUNCTIONS = frozenset(
    {"contains", "startswith", "endswith", "format", "join", "tojson", "fromjson"}
)
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
FUNCTION_SPELLING = {
    "contains": "contains",
    "startswith": "startsWith",
    "endswith": "endsWith",
    "format": "format",
    "join": "join",
    "tojson": "toJSON",
    "fromjson": "fromJSON",
    "success": "success",
    "failure": "failure",
    "always": "always",
    "cancelled": "cancelled",
}
UNSUPPORTED_FUNCTIONS = {
    "hashfiles": "hashFiles() is not supported (there is no cache action to key): "
    "compute a hash in a `run` step instead",
}

# What a rejected `uses:` action does, for a message that says what to do instead.
_SETUP_TOOLS = {
    "actions/setup-python": "Python",
    "actions/setup-node": "Node.js",
    "actions/setup-go": "Go",
    "actions/setup-java": "Java",
    "actions/setup-dotnet": ".NET",
    "ruby/setup-ruby": "Ruby",
    "dtolnay/rust-toolchain": "Rust",
}


def unsupported_action_message(uses: str) -> str:
    """The error for a `uses:` other than actions/checkout."""
    name = uses.split("@", 1)[0].lower()
    head = f"`uses: {uses}` is not supported"
    if name in _SETUP_TOOLS:
        return f"{head}: use a `run` step, or a container image that has {_SETUP_TOOLS[name]}"
    if uses.startswith("docker://"):
        return f"{head}: set the job's `container` to that image and use `run` steps"
    if name.startswith("./"):
        return f"{head}: local actions are not supported; put their commands in `run` steps"
    if name in ("actions/cache", "actions/upload-artifact", "actions/download-artifact"):
        return f"{head}: caches and artifacts are not supported; use `run` steps"
    return (
        f"{head}: only `actions/checkout` is; put what the action does in a `run` step, "
        "or use a container image that has the tools it installs"
    )
