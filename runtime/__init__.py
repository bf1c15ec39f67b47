"""The composition root: wires adapters from configuration and runs a Conveyor process
(the process around it, signals and exit codes, is `cli.serve`).

Everything is chosen here from ``Config`` (12-factor: ``CONVEYOR_*`` environment
variables, overridable by flags): the database (``sqlite:`` or ``postgresql:``), the queue
(``memory://`` or ``amqp://``), the job backend (``local`` or ``kubernetes``) and the
role (``all``, ``pipeline``, ``executor``). Start goes in order; stop goes in reverse,
in ``finally``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import grpc
import pykka

import store
from actors.backends import Backend
from actors.backends.local import LocalBackend
from actors.introspection import describe_all
from actors.log_actor import LogActor
from actors.logbatch import LineGate
from actors.queue_actor import QueueActor
from actors.services import Services
from actors.supervisor import ChildSpec, Supervisor, SupervisorConfig, SupervisorProxy
from broker import open_queue
from broker.base import BuildQueue
from conveyor.v1 import executor_pb2_grpc
from observability import metrics
from observability.description import ActorDescription, RuntimeInfo
from observability.probes import RuntimeProbes
from observability.server import ObservabilityServer
from rpc import tokens
from rpc.admin_service import AdminServicer
from rpc.auth import Authenticator
from rpc.client import BearerToken
from rpc.executor_service import ExecutorServicer
from rpc.pipeline_service import PipelineServicer
from rpc.server import build_server, saturation, stop_server
from runtime_config import (
    Config,
    ConfigError,
    ListenFailed,
    StartCancelled,
    StartFailed,
    parse_image_map,
)
from store.changes import ChangeFeed

__all__ = ["Config", "ConfigError", "ListenFailed", "Runtime", "StartCancelled", "StartFailed",
           "executor_channel", "open_store", "parse_image_map"]

log = logging.getLogger("conveyor.runtime")

VERSION = "0.1.0"
# `serve` only (`run` and tests serve none); loopback unless configured: in a cluster the
# ConfigMap sets 0.0.0.0 for the probes.
DEFAULT_METRICS_LISTEN = "127.0.0.1:9090"
# Of the shutdown bound (CONVEYOR_DRAIN_S), what running builds may not use: the time
# left to stop the actors, hand builds over and close connections.
STOP_RESERVE_S = 5.0
STOP_RESERVE_SHARE = 0.5
SUPERVISOR_ANSWER_S = 5.0


def open_store(config: Config, *, stop: threading.Event | None = None,
               migrate: bool | None = None) -> list[int]:
    """Open the configured database and prove it usable, for every command that uses it;
    returns the migrations applied now.

    ``migrate``: True applies pending migrations (under PostgreSQL's advisory lock),
    None only on SQLite (the embedded database migrates itself), False never. Unless
    migrated here, a schema that is missing or behind refuses, saying to run
    ``conveyor db migrate``. Raises `ConfigError` (a malformed URL or setting),
    `StartFailed` (one line: the database is missing, unreachable or not migrated) or
    `StartCancelled` (``stop`` was set while waiting).
    """
    try:
        db = store.open_database(config.database_url)
    except store.DatabaseConfigError as exc:
        raise ConfigError(str(exc)) from None
    except store.StoreError as exc:
        raise StartFailed(str(exc)) from None
    try:
        store.check_connection(stop)
        if stop is not None and stop.is_set():
            raise StartCancelled("stopped while connecting to the database")
        if migrate or (migrate is None and store.backend() == "sqlite"):
            return store.migrate(db, stop=stop)
        store.require_current_schema(db)
    except BaseException as exc:
        store.close_database()
        if stop is not None and stop.is_set():
            raise StartCancelled("stopped while opening the database") from None
        if isinstance(exc, store.StoreError):
            raise StartFailed(str(exc)) from None
        if isinstance(exc, store.DatabaseFailure):
            raise StartFailed(f"the database failed: {_first_line(exc)}") from None
        raise
    return []


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class _LateStub:
    """The pipeline service's ExecutorService stub, bound once the channel exists.

    In role ``all`` the executor is served by the same server, whose port is only known
    after binding; the pipeline service still calls it over a real channel.
    """

    def __init__(self) -> None:
        self.stub: executor_pb2_grpc.ExecutorServiceStub | None = None

    def __getattr__(self, name: str) -> Any:
        if self.stub is None:
            raise RuntimeError("executor channel is not connected yet")
        return getattr(self.stub, name)


class Runtime:
    """One Conveyor process. ``start()`` then ``wait()``; ``stop()`` always (in finally)."""

    def __init__(self, config: Config, backend: Backend | None = None) -> None:
        self.config = config
        # The job backend; None: the one config.backend names, made when the executor starts.
        self.backend = backend
        self.started_at = time.monotonic()
        self.feed = ChangeFeed()
        self.fatal = threading.Event()
        self.fatal_reason = ""
        self.stopping = threading.Event()
        self.queue: BuildQueue | None = None
        self.supervisor: pykka.ActorRef[Supervisor] | None = None
        self.server: grpc.Server | None = None
        self.channel: grpc.Channel | None = None
        self.port = 0
        # Role `all` calls its own ExecutorService: a secret nobody else ever sees.
        self.internal_token = config.internal_token or tokens.new_token()
        self.observability: ObservabilityServer | None = None
        # When shutdown must be over (monotonic): CONVEYOR_DRAIN_S after the stop request.
        self.deadline: float | None = None
        self._stops: list[tuple[str, Callable[[], None]]] = []

    @property
    def address(self) -> str:
        host = self.config.listen.rsplit(":", 1)[0]
        return f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{self.port}"

    # -- start -----------------------------------------------------------------------
    def start(self) -> None:
        """Start every part in order. Raises `ConfigError`, `ListenFailed`, `StartFailed`,
        or `StartCancelled` when ``stopping`` is set meanwhile; call `stop` either way."""
        cfg = self.config
        open_store(cfg, stop=self.stopping, migrate=cfg.migrate_on_start)
        self._stops.append(("database", store.close_database))
        self._check_stopping("opening the database")
        self.queue = open_queue(cfg.queue_url, queue=cfg.queue_name, prefix=cfg.queue_prefix)
        self._stops.append(("queue", self.queue.close))
        if cfg.runs_executor:
            self._start_executor(self.queue)
            self._check_stopping("starting the executor")
        late = _LateStub()
        pipeline = PipelineServicer(
            late, self.queue, self.feed,  # type: ignore[arg-type]
            max_queued_per_pipeline=cfg.max_queued_per_pipeline,
            max_streams_per_user=cfg.max_streams_per_user,
        ) if cfg.runs_pipeline else None
        executor = ExecutorServicer(
            store, max_queued_per_pipeline=cfg.max_queued_per_pipeline
        ) if cfg.runs_executor else None
        admin = AdminServicer(self.describe_actors, self.runtime_info)
        self.server, self.port = build_server(
            address=cfg.listen, pipeline=pipeline, executor=executor, admin=admin,
            auth=Authenticator(store, self.internal_token),
        )
        self.server.start()
        self._stops.append(("grpc server", lambda: stop_server(
            self.server, grace=min(2.0, self._left(floor=0.1)))))
        if pipeline is not None:
            self.channel = executor_channel(cfg.executor_addr or self.address,
                                            self.internal_token)
            self._stops.append(("executor channel", self.channel.close))
            late.stub = executor_pb2_grpc.ExecutorServiceStub(self.channel)
        self._start_observability()
        # What start-up built (modules, the Kubernetes client's models, connections) lives
        # as long as we do: out of the collector's sight, a full collection no longer
        # stalls every thread for tens of milliseconds walking it (seen as release-latency
        # outliers in bench.k8s).
        gc.freeze()
        self._stops.append(("frozen objects", gc.unfreeze))
        self._check_stopping("starting the servers")
        log.info("conveyor %s (role %s) listening on %s", VERSION, cfg.role, self.address)

    def _check_stopping(self, phase: str) -> None:
        if self.stopping.is_set():
            raise StartCancelled(f"stopped while {phase}")

    def _start_observability(self) -> None:
        cfg = self.config
        metrics.set_info(version=VERSION, role=cfg.role)
        if cfg.metrics_listen in ("", "off"):
            return
        assert self.queue is not None
        metrics.watch_queue_depth(self.queue.depth)
        self._stops.append(("queue depth metric", lambda: metrics.watch_queue_depth(None)))
        self.observability = ObservabilityServer(cfg.metrics_listen, RuntimeProbes(self))
        self.observability.start()
        self._stops.append(("metrics server", self.observability.stop))

    def _start_executor(self, queue: BuildQueue) -> None:
        cfg = self.config
        backend = self.backend = self._pick_backend()
        services = Services(feed=self.feed, gate=LineGate(), owner=cfg.executor_id,
                            backend_adopts=backend.adopts, workspace=backend.workspace)

        def start_queue(hook: Any) -> pykka.ActorRef[Any]:
            return QueueActor.start(queue, services.get("supervisor"), prefetch=cfg.max_builds,
                                    on_crash=hook)

        specs = [
            ChildSpec("log", lambda hook: LogActor.start(
                services.feed, services.gate, max_job_bytes=cfg.max_job_log_bytes,
                on_crash=hook)),
            ChildSpec("backend", lambda hook: backend.start(services, hook)),
            ChildSpec("queue", start_queue),
        ]
        sup_config = SupervisorConfig(
            max_builds=cfg.max_builds, max_jobs=cfg.max_jobs, lease_s=cfg.lease_s,
            reconcile_every_s=cfg.reconcile_s, republish_after_s=max(2 * cfg.reconcile_s, 5.0),
        )
        self.supervisor = Supervisor.start(services, queue, specs, sup_config, self._on_fatal)
        self._stops.append(("actors", self._stop_actors))
        answered = self.supervisor.proxy().ping()
        give_up = time.monotonic() + 15
        # In slices, so a stop asked for meanwhile is seen at once.
        while not self.stopping.is_set():
            try:
                answered.get(timeout=0.2)
                return
            except pykka.Timeout:
                if time.monotonic() >= give_up:
                    raise StartFailed("the executor engine did not answer within 15s") from None
            except pykka.ActorDeadError as exc:
                raise StartFailed(f"the executor engine did not start: {exc}") from None

    def _pick_backend(self) -> Backend:
        if self.backend is not None:
            return self.backend
        if self.config.backend == "local":
            return LocalBackend(self.config.workdir, self.config.local_trusted)
        # Imported only here: a local executor never loads the Kubernetes client.
        from actors.backends.kubernetes import K8sSettings, KubernetesBackend
        from k8s.client import KubeConfigError, in_cluster_namespace, load_configuration

        cfg = self.config
        try:
            configuration = load_configuration(url=cfg.k8s_url, pool_size=cfg.max_jobs + 16)
        except KubeConfigError as exc:
            raise ConfigError(str(exc)) from exc
        return KubernetesBackend(K8sSettings(
            configuration=configuration,
            namespace=cfg.namespace or in_cluster_namespace() or "default",
            default_image=cfg.image,
            runs_on_images=dict(cfg.runs_on_images),
            pending_timeout_s=cfg.k8s_pending_timeout_s,
        ))

    def _on_fatal(self, reason: str) -> None:
        self.fatal_reason = reason
        self.fatal.set()

    def _stop_actors(self) -> None:
        if self.supervisor is not None and self.supervisor.is_alive():
            try:
                self.supervisor.stop(block=True, timeout=self._left(floor=1.0))
            except pykka.Timeout:
                log.error("the supervisor did not stop in time")
        # Whatever outlived the supervisor: last started, first stopped (as pykka's
        # stop_all), sharing the time left instead of a fixed timeout each.
        stuck: set[str] = set()
        for ref in reversed(pykka.ActorRegistry.get_all()):
            try:
                ref.stop(block=True, timeout=self._left(floor=0.1))
            except pykka.Timeout:
                stuck.add(ref.actor_class.__name__)
        if stuck:
            log.error("actors did not stop in time: %s", ", ".join(sorted(stuck)))

    def _left(self, floor: float = 0.0) -> float:
        """Seconds left before the shutdown deadline (at least ``floor``)."""
        if self.deadline is None:
            return max(floor, self.config.drain_s)
        return max(floor, self.deadline - time.monotonic())

    # -- stop ------------------------------------------------------------------------
    def request_stop(self) -> None:
        """What SIGTERM does: stop, leaving CONVEYOR_DRAIN_S for the whole shutdown."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.config.drain_s
        self.stopping.set()

    def drain(self, timeout: float) -> bool:
        """Graceful first step: take no new builds, wait for running ones to finish."""
        if self.supervisor is None or not self.supervisor.is_alive():
            return True
        give_up = time.monotonic() + timeout
        # A supervisor that cannot answer this quickly is stuck (retrying the database):
        # its builds cannot finish either, so waiting longer would only delay handover.
        answer_s = max(0.1, min(timeout, SUPERVISOR_ANSWER_S))
        try:
            self._supervisor_proxy().stop_accepting().get(timeout=answer_s)
            idle = cast(threading.Event, self.supervisor.proxy().idle.get(timeout=answer_s))
        except pykka.Timeout:
            log.warning("the supervisor did not answer within %.0fs (retrying the "
                        "database?): stopping without draining", answer_s)
            return False
        except pykka.ActorDeadError:
            return True
        if idle.wait(max(0.0, give_up - time.monotonic())):
            return True
        log.warning("builds still running after %.0fs: handing them over", timeout)
        return False

    def drain_budget(self) -> float:
        """How long running builds may drain: the shutdown bound less the stop reserve."""
        reserve = min(STOP_RESERVE_S, self.config.drain_s * STOP_RESERVE_SHARE)
        return max(0.0, self._left() - reserve)

    def _supervisor_proxy(self) -> SupervisorProxy:
        assert self.supervisor is not None
        return cast(SupervisorProxy, self.supervisor.proxy())

    def stop(self) -> None:
        """Stop every started part in reverse order, within the shutdown deadline."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.config.drain_s
        self.stopping.set()
        # Drained or not, store calls now fail instead of retrying: an actor blocked
        # in a retry loop would otherwise hold up its stop for the whole retry budget.
        store.interrupt_retries()
        while self._stops:
            name, fn = self._stops.pop()
            try:
                fn()
            except Exception as exc:
                log.error("stopping %s failed: %s", name, _first_line(exc),
                          exc_info=log.isEnabledFor(logging.DEBUG))

    # -- introspection -----------------------------------------------------------------
    def saturation(self) -> str | None:
        """Why the gRPC server takes no more users' calls now (a full lane), or None."""
        return None if self.server is None else saturation(self.server)

    def describe_actors(self) -> list[ActorDescription]:
        return describe_all()

    def runtime_info(self) -> RuntimeInfo:
        builds = jobs = 0
        if self.supervisor is not None and self.supervisor.is_alive():
            try:
                builds = len(self._supervisor_proxy().running_builds().get(timeout=1))
            except (pykka.Timeout, pykka.ActorDeadError):
                builds = -1
        jobs = metrics.jobs_running()
        depth = self.queue.depth() if self.queue is not None else -1
        return RuntimeInfo(
            role=self.config.role,
            version=VERSION,
            uptime_seconds=time.monotonic() - self.started_at,
            builds_running=builds,
            jobs_running=jobs,
            queue_depth=depth,
            executor_id=self.config.executor_id if self.config.runs_executor else "",
            database=_redact(self.config.database_url),
            queue=_redact(self.config.queue_url),
            backend=self.backend.name if self.backend is not None else self.config.backend,
        )


def executor_channel(addresses: str, internal_token: str) -> grpc.Channel:
    """A channel to one or more executors (``host:port[,host:port…]``), round robin,
    that sends the internal token (ExecutorService refuses calls without it).

    With several addresses a failed executor is skipped. In Kubernetes one name of a
    headless Service (``dns:///conveyor-executor:50051``) resolves to every executor
    pod; round robin spreads calls over all of them (gRPC's default would pin one).
    """
    parts = [a.strip() for a in addresses.split(",") if a.strip()]
    options = [("grpc.lb_policy_name", "round_robin")]
    if len(parts) == 1:
        channel = grpc.insecure_channel(parts[0], options=options)
    else:
        channel = grpc.insecure_channel("ipv4:" + ",".join(parts), options=options)
    return grpc.intercept_channel(channel, BearerToken(internal_token))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
