"""Conveyor's configuration: 12-factor ``CONVEYOR_*`` environment variables, flags on top.

Every setting is validated here, with an error naming the variable and what it wants, so
a process refuses to start instead of failing later.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from broker.base import QUEUE_NAME, QUEUE_PREFIX

ROLES = ("all", "pipeline", "executor")

# The defaults of settings that the components also take as arguments (tests and
# benches build them directly): defined here once, and the components' own defaults
# name these, so a default cannot drift between the configuration and the code.
LISTEN = "127.0.0.1:50051"  # also where the client commands look for a server
MAX_JOBS = 64
MAX_BUILDS = 32
LEASE_S = 30.0
RECONCILE_S = 5.0
DEFAULT_IMAGE = "ubuntu:24.04"
K8S_PENDING_TIMEOUT_S = 120.0  # image pull errors / unschedulable → the job fails
MAX_QUEUED_PER_PIPELINE = 100
MAX_STREAMS_PER_USER = 8
# A job's log stops here, with a note; the job goes on and its reason says so.
# GitLab's output_limit is 4 MiB and its users keep raising it; 64 MiB holds a
# verbose build (650,000 lines of 100 bytes) while 64 jobs at once stay within 4 GiB.
MAX_JOB_LOG_BYTES = 64 << 20


class ListenFailed(OSError):
    """A server could not bind its configured address (taken, or not this host's)."""


class ConfigError(ValueError):
    """A configuration value is missing or malformed (names the variable)."""


class StartFailed(RuntimeError):
    """A process could not start for a reason outside its configuration's syntax (the
    database is missing, unreachable or not migrated); the message is one line."""


class StartCancelled(RuntimeError):
    """A stop was asked for (SIGTERM) while the process was still starting."""


def _default_home() -> Path:
    return Path(os.environ.get("CONVEYOR_HOME", Path.home() / ".conveyor"))


@dataclass(frozen=True)
class Config:
    role: str = "all"
    database_url: str = ""
    queue_url: str = "memory://"
    backend: str = "local"
    listen: str = LISTEN
    executor_addr: str = ""  # the pipeline role's way to the executors
    workdir: Path = field(default_factory=lambda: _default_home() / "work")
    max_jobs: int = MAX_JOBS
    max_builds: int = MAX_BUILDS
    lease_s: float = LEASE_S
    reconcile_s: float = RECONCILE_S
    drain_s: float = 60.0  # graceful shutdown: how long to wait for running builds
    queue_name: str = QUEUE_NAME
    queue_prefix: str = QUEUE_PREFIX
    executor_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    )
    migrate_on_start: bool | None = None  # None: only for SQLite (embedded mode)
    # Kubernetes backend: the namespace of the Jobs (default: the executor's own, in a
    # cluster); the API server URL (tests, out of cluster; else in-cluster or kubeconfig);
    # the image of jobs without `container`, and images by `runs-on` label.
    namespace: str = ""
    k8s_url: str = ""
    image: str = DEFAULT_IMAGE
    runs_on_images: Mapping[str, str] = field(default_factory=dict)
    k8s_pending_timeout_s: float = K8S_PENDING_TIMEOUT_S
    # What the pipeline service sends ExecutorService: required when the roles run in
    # separate processes; role `all` makes up its own when unset.
    internal_token: str = field(default="", repr=False)
    max_queued_per_pipeline: int = MAX_QUEUED_PER_PIPELINE
    max_streams_per_user: int = MAX_STREAMS_PER_USER
    max_job_log_bytes: int = MAX_JOB_LOG_BYTES
    metrics_listen: str = ""  # /metrics, /healthz, /readyz; "" or "off": none (serve: :9090)
    # The local backend's jobs are trusted (one user on their own machine: `conveyor run`,
    # or CONVEYOR_LOCAL_TRUSTED=1): they run unsandboxed, as the server's user.
    local_trusted: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        text = {
            "role": "CONVEYOR_ROLE",
            "database_url": "CONVEYOR_DATABASE_URL",
            "queue_url": "CONVEYOR_AMQP_URL",
            "backend": "CONVEYOR_BACKEND",
            "listen": "CONVEYOR_LISTEN",
            "executor_addr": "CONVEYOR_EXECUTOR_ADDR",
            "executor_id": "CONVEYOR_EXECUTOR_ID",
            "queue_name": "CONVEYOR_QUEUE_NAME",
            "queue_prefix": "CONVEYOR_QUEUE_PREFIX",
            "namespace": "CONVEYOR_NAMESPACE",
            "k8s_url": "CONVEYOR_K8S_URL",
            "image": "CONVEYOR_DEFAULT_IMAGE",
            "metrics_listen": "CONVEYOR_METRICS_LISTEN",
            "internal_token": "CONVEYOR_INTERNAL_TOKEN",
        }
        for name, var in text.items():
            if env.get(var):
                values[name] = env[var]
        if env.get("CONVEYOR_QUEUE_URL"):
            values["queue_url"] = env["CONVEYOR_QUEUE_URL"]
        if env.get("CONVEYOR_WORKDIR"):
            values["workdir"] = Path(env["CONVEYOR_WORKDIR"])
        numbers: tuple[tuple[str, str, type[int] | type[float]], ...] = (
            ("max_jobs", "CONVEYOR_MAX_JOBS", int),
            ("max_builds", "CONVEYOR_MAX_BUILDS", int),
            ("lease_s", "CONVEYOR_LEASE_S", float),
            ("reconcile_s", "CONVEYOR_RECONCILE_S", float),
            ("drain_s", "CONVEYOR_DRAIN_S", float),
            ("k8s_pending_timeout_s", "CONVEYOR_K8S_PENDING_TIMEOUT_S", float),
            ("max_queued_per_pipeline", "CONVEYOR_MAX_QUEUED_PER_PIPELINE", int),
            ("max_streams_per_user", "CONVEYOR_MAX_STREAMS_PER_USER", int),
            ("max_job_log_bytes", "CONVEYOR_MAX_JOB_LOG_BYTES", int),
        )
        for name, var, kind in numbers:
            if env.get(var):
                values[name] = _positive(var, env[var], kind)
        if env.get("CONVEYOR_LOCAL_TRUSTED"):
            values["local_trusted"] = _flag("CONVEYOR_LOCAL_TRUSTED", env["CONVEYOR_LOCAL_TRUSTED"])
        if env.get("CONVEYOR_RUNS_ON_IMAGES"):
            values["runs_on_images"] = parse_image_map(
                "CONVEYOR_RUNS_ON_IMAGES", env["CONVEYOR_RUNS_ON_IMAGES"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        if not config.database_url:
            config = replace(config, database_url=f"sqlite:///{_default_home() / 'conveyor.db'}")
        config.check()
        return config

    def check(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(
                f"CONVEYOR_ROLE (--role) must be one of {', '.join(ROLES)}, got {self.role!r}")
        _check_scheme("CONVEYOR_DATABASE_URL", self.database_url,
                      ("sqlite", "postgresql", "postgres"),
                      "sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME")
        _check_scheme("CONVEYOR_AMQP_URL", self.queue_url, ("memory", "amqp", "amqps"),
                      "memory:// or amqp://USER:PASSWORD@HOST:5672/VHOST")
        _check_listen("CONVEYOR_LISTEN", self.listen)
        if self.metrics_listen not in ("", "off"):
            _check_listen("CONVEYOR_METRICS_LISTEN", self.metrics_listen)
        if self.backend not in ("local", "kubernetes"):
            raise ConfigError(f"CONVEYOR_BACKEND must be local or kubernetes, got {self.backend!r}")
        if self.role == "pipeline" and not self.executor_addr:
            raise ConfigError("the pipeline role needs CONVEYOR_EXECUTOR_ADDR (host:port)")
        if self.role != "all" and not self.internal_token:
            raise ConfigError(
                f"role {self.role} needs CONVEYOR_INTERNAL_TOKEN: the same secret in the "
                "pipeline and executor processes (it authenticates ExecutorService calls)"
            )
        if self.role != "all" and self.queue_url.startswith("memory:"):
            raise ConfigError(
                f"role {self.role} runs in its own process and cannot share the in-memory "
                "queue: set CONVEYOR_AMQP_URL=amqp://…"
            )

    @property
    def runs_executor(self) -> bool:
        return self.role in ("all", "executor")

    @property
    def runs_pipeline(self) -> bool:
        return self.role in ("all", "pipeline")


def _flag(var: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{var} must be 1 or 0 (true/false), got {text!r}")


# Read once at start, then dropped from the process's environment: nothing the server
# runs later inherits them, and no code path can read them back by accident.
SECRET_VARIABLES = ("CONVEYOR_INTERNAL_TOKEN", "CONVEYOR_DATABASE_URL", "CONVEYOR_AMQP_URL",
                    "CONVEYOR_QUEUE_URL", "CONVEYOR_TOKEN")


def forget_secrets(environ: MutableMapping[str, str]) -> list[str]:
    """Remove the secret-bearing variables from ``environ`` (``os.environ`` once the
    configuration is read); returns the names removed.

    ``/proc/<pid>/environ`` keeps showing the process's initial environment whatever is
    removed here: the sandbox keeps jobs from seeing the server's /proc at all."""
    removed = [name for name in SECRET_VARIABLES if name in environ]
    for name in removed:
        del environ[name]
    return removed


def _positive(var: str, text: str, kind: type[int] | type[float]) -> int | float:
    what = "a whole number" if kind is int else "a number"
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{var} must be {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{var} must be a finite number, got {text!r}")
    if value <= 0:
        raise ConfigError(f"{var} must be positive, got {text!r}")
    return value


def _shown(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url  # never echo credentials


def _check_scheme(var: str, url: str, schemes: tuple[str, ...], example: str) -> None:
    scheme, sep, _ = url.partition("://")
    if not sep and url.lower().startswith("sqlite:"):
        scheme, sep = "sqlite", ":"  # sqlite:relative.db: the store names what is wrong
    if not sep or scheme.lower() not in schemes:
        raise ConfigError(f"{var}: unsupported URL {_shown(url)!r}: use {example}")


def _check_listen(var: str, listen: str) -> None:
    _host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{var} must be host:port (e.g. 127.0.0.1:50051), got {listen!r}")


def parse_image_map(var: str, text: str) -> dict[str, str]:
    """``ubuntu-latest=ubuntu:24.04,alpine=alpine:3.20`` → {label: image}."""
    out: dict[str, str] = {}
    for n, item in enumerate(p.strip() for p in text.split(",")):
        if not item:
            continue
        label, sep, image = (part.strip() for part in item.partition("="))
        if not sep or not label or not image:
            raise ConfigError(f"{var}: entry {n + 1} ({item!r}) must be LABEL=IMAGE")
        if label in out:
            raise ConfigError(f"{var}: label {label!r} is mapped twice")
        out[label] = image
    return out
