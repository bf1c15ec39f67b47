"""Supervisor: starts the service actors, restarts them when they crash, runs builds.

pykka has no supervision, so it is built here: each service actor has a child spec; a
crash is reported by the child's ``on_failure`` hook as ``ChildFailed``; the child is
restarted as a fresh instance after a backoff, within a restart budget. Past the budget
the supervisor escalates: ``on_fatal`` tells the runtime to exit non-zero.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, assert_never

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

import store
from actors.admission import Admission, Decision, Duplicate, GiveBack, Request, Start
from actors.base import ActorThread, ConveyorActor, FailureHook, tell_safely
from actors.build_actor import BuildActor
from actors.job_actor import JobActor
from actors.messages import (
    BackendRestarted,
    BuildFinished,
    BuildRequested,
    CancelRequested,
    ChildFailed,
    Describe,
    LeaseLost,
    StartBuild,
    StopConsuming,
    SupervisorMessage,
    Tick,
)
from actors.services import Services
from actors.slots import JobSlots
from broker.base import BrokerError, BuildQueue
from conveyor.v1 import executor_pb2
from observability import metrics
from runtime_config import LEASE_S, MAX_BUILDS, MAX_JOBS, RECONCILE_S
from workflow.states import BuildStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChildSpec:
    name: str  # also the Services name ("log", "backend", "queue")
    start: Callable[[FailureHook], pykka.ActorRef[Any]]


@dataclass
class _Child:
    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    restarts: deque[float] | None = None
    restart_at: float | None = None
    generation: int = 0  # which start of the child a crash report is about


@dataclass(frozen=True)
class SupervisorConfig:
    max_builds: int = MAX_BUILDS
    # Builds of dead executors taken over beyond max_builds (None: as many again).
    takeover_headroom: int | None = None
    max_jobs: int = MAX_JOBS
    lease_s: float = LEASE_S
    reconcile_every_s: float = RECONCILE_S
    republish_after_s: float = 10.0
    restart_budget: int = 5  # restarts allowed per child ...
    restart_window_s: float = 60.0  # ... within this window
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    start_timeout_s: float = 10.0


class Supervisor(ConveyorActor):
    kind = "Supervisor"
    build_actor: type[BuildActor] = BuildActor  # what runs each build (tests wrap it)

    def __init__(
        self,
        services: Services,
        queue: BuildQueue,
        specs: list[ChildSpec],
        config: SupervisorConfig,
        on_fatal: Callable[[str], None],
    ) -> None:
        super().__init__("supervisor")
        self.services = services
        self.queue = queue
        self.config = config
        self.on_fatal = on_fatal
        self.slots = JobSlots(config.max_jobs)
        self.children = {spec.name: _Child(spec, restarts=deque()) for spec in specs}
        self.admission = Admission(config.max_builds, config.takeover_headroom)
        self.builds: dict[int, pykka.ActorRef[BuildActor]] = {}  # the BuildActors running
        self.lost: set[int] = set()  # builds another executor took over, still stopping
        self.idle = threading.Event()
        self.idle.set()
        self._last_reconcile = 0.0
        self._ticker = ActorThread("supervisor-ticker", self._tick_loop)

    # -- lifecycle -------------------------------------------------------------------
    def on_start(self) -> None:
        self.services.set("supervisor", self.actor_ref)  # the queue actor tells us builds
        for child in self.children.values():
            self._start_child(child)
        self._ticker.start()
        self.state = "running"

    def on_stop(self) -> None:
        self.state = "stopping"
        self._ticker.stop()
        if "queue" in self.children:
            self._stop_child(self.children["queue"])
        for job in pykka.ActorRegistry.get_by_class(JobActor):
            job.stop(block=False)
        for build_id, ref in list(self.builds.items()):
            ref.stop(block=True, timeout=5)
            # Hand the build over at once instead of letting its lease run out.
            try:
                store.release_build(build_id, self.services.owner)
            except store.StoreError:
                log.exception("could not release build %s", build_id)
        for job in pykka.ActorRegistry.get_by_class(JobActor):
            job.stop(block=True, timeout=5)
        for name in reversed([n for n in self.children if n != "queue"]):
            self._stop_child(self.children[name])

    def _start_child(self, child: _Child) -> None:
        name = child.spec.name
        child.generation += 1
        generation = child.generation
        ref = child.spec.start(lambda key, exc: self._child_crashed(name, generation, exc))
        try:
            ref.ask(Describe(), timeout=self.config.start_timeout_s)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            # on_start failures never reach on_failure: this ping is how we learn of them.
            raise RuntimeError(f"service actor {name!r} did not start: {exc!r}") from exc
        child.ref = ref
        self.services.set(name, ref)

    def _stop_child(self, child: _Child) -> None:
        if child.ref is not None and child.ref.is_alive():
            try:
                child.ref.stop(block=True, timeout=15)
            except pykka.Timeout:
                log.error("service actor %s did not stop in time", child.spec.name)
        child.ref = None

    def _child_crashed(self, name: str, generation: int, exc: BaseException | None) -> None:
        tell_safely(self.actor_ref, ChildFailed(name, repr(exc), generation))

    def _tick_loop(self, stop: threading.Event) -> None:
        while not stop.wait(0.2):
            tell_safely(self.actor_ref, Tick())

    # -- messages --------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, SupervisorMessage):
            self._handle(message)
            return None
        return super().on_receive(message)

    def _handle(self, message: SupervisorMessage) -> None:
        match message:
            case BuildRequested():
                self._requested(message)
            case BuildFinished():
                self._build_finished(message)
            case CancelRequested():
                ref = self.builds.get(message.build_id)
                if ref is not None:
                    tell_safely(ref, message)
            case ChildFailed():
                self._schedule_restart(message)
            case Tick():
                self._tick()
            case _:
                assert_never(message)

    def _requested(self, message: BuildRequested) -> None:
        self._carry_out(self.admission.offer(
            Request(message.build_id, message.attempt, message.delivery)))

    def _carry_out(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, Start):
                self._run_build(decision)
            elif isinstance(decision, Duplicate):
                self.counters["duplicates"] += 1
                decision.delivery.ack()
            elif isinstance(decision, GiveBack):
                decision.delivery.reject(requeue=True)
        if not self.builds:
            self.idle.set()

    def _run_build(self, start: Start) -> None:
        request = start.request
        if request.takeover:
            log.warning("taking over build %s (its owner's lease expired)", request.build_id)
            self.counters["takeovers"] += 1
            metrics.build_taken_over()  # metrics
        ref = self.build_actor.start(
            request.build_id,
            parent=self.actor_ref,
            services=self.services,
            slots=self.slots,
            lease_s=self.config.lease_s,
            run=start.run,
        )
        self.builds[request.build_id] = ref
        self.idle.clear()
        self.counters["builds_started"] += 1
        ref.tell(StartBuild(request.delivery))

    def _build_finished(self, message: BuildFinished) -> None:
        running = self.admission.running.get(message.build_id)
        if running is None or running.run != message.run:
            self.counters["stale_reports"] += 1  # a repeated report, or an older run's
            return
        self.builds.pop(message.build_id, None)
        self.lost.discard(message.build_id)
        self.counters[f"builds_{message.status.lower()}"] += 1
        self._carry_out(self.admission.ended(message.build_id, message.run))

    def _schedule_restart(self, message: ChildFailed) -> None:
        child = self.children.get(message.name)
        if child is None or message.generation != child.generation \
                or child.restart_at is not None:
            return  # a repeated report, or one about an instance restarted already
        now = time.monotonic()
        assert child.restarts is not None
        while child.restarts and now - child.restarts[0] > self.config.restart_window_s:
            child.restarts.popleft()
        if len(child.restarts) >= self.config.restart_budget:
            reason = (f"service actor {message.name!r} crashed {len(child.restarts) + 1} times "
                      f"within {self.config.restart_window_s:g}s (last: {message.error})")
            log.critical("escalating: %s", reason)
            self.state = "escalated"
            self.on_fatal(reason)
            return
        backoff = min(self.config.backoff_initial_s * 2 ** len(child.restarts),
                      self.config.backoff_max_s)
        child.restarts.append(now)
        child.restart_at = now + backoff
        self.counters[f"restarts_{message.name}"] += 1
        metrics.actor_restarted(message.name)  # metrics
        log.warning("service actor %s crashed (%s); restarting in %.1fs",
                    message.name, message.error, backoff)

    def _tick(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                try:
                    self._start_child(child)
                    if child.spec.name == "backend":
                        for ref in pykka.ActorRegistry.get_by_class(JobActor):
                            tell_safely(ref, BackendRestarted())
                except RuntimeError as exc:
                    self._schedule_restart(
                        ChildFailed(child.spec.name, str(exc), child.generation))
        if now - self._last_reconcile >= self.config.reconcile_every_s:
            self._last_reconcile = now
            self._reconcile()

    def _reconcile(self) -> None:
        """Renew our leases, list orphaned builds (taken over ahead of new ones), re-publish
        the outbox (each build by one reconciler: the rows are claimed)."""
        try:
            if self.builds:
                kept = set(store.renew_leases(self.services.owner, list(self.builds),
                                              self.config.lease_s))
                for build_id in set(self.builds) - kept:
                    self._check_lost(build_id)
            if self.admission.accepting:
                # Listed whether or not a slot is free: a freed slot goes to them first.
                expired = store.expired_builds(limit=self.admission.takeover_limit)
                self._carry_out(self.admission.orphaned((b.id, b.attempt) for b in expired))
            claim_s = self.config.republish_after_s
            for build_id, attempt in store.claim_unpublished(claim_s, claim_s):
                log.warning("re-publishing build %s (attempt %s): its message was never "
                            "confirmed", build_id, attempt)
                body = executor_pb2.BuildJob(build_id=build_id, attempt=attempt)
                self.queue.publish_build(body.SerializeToString())
                store.mark_published(build_id)
                self.counters["republished"] += 1
        except (store.StoreError, BrokerError) as exc:
            log.warning("reconciliation failed, will retry: %s", exc)

    def _check_lost(self, build_id: int) -> None:
        """A build whose lease we could not renew: not claimed yet, finishing, or taken
        over by another executor after our lease ran out — then stop our work on it."""
        if build_id in self.lost:
            return
        record = store.get_build(build_id)
        if record.status != BuildStatus.RUNNING or record.owner == self.services.owner:
            return
        self.lost.add(build_id)
        log.error("lost the lease of build %s: %s took it over", build_id, record.owner)
        self.counters["leases_lost"] += 1
        ref = self.builds.get(build_id)
        if ref is not None:
            tell_safely(ref, LeaseLost(build_id))

    # -- asks (runtime, console) -----------------------------------------------------
    def stop_accepting(self) -> None:
        queue = self.children.get("queue")
        if queue is not None and queue.ref is not None:
            tell_safely(queue.ref, StopConsuming())
        self._carry_out(self.admission.stop_accepting())

    def running_builds(self) -> list[int]:
        return sorted(self.builds)


class SupervisorProxy(ActorMemberMixin, pykka.ActorProxy[Supervisor]):
    running_builds = proxy_method(Supervisor.running_builds)
    stop_accepting = proxy_method(Supervisor.stop_accepting)
    ping = proxy_method(Supervisor.ping)
