"""QueueActor: turns broker deliveries into messages for the supervisor.

Two named threads own the blocking consumer loops (builds and control broadcasts); they
decode each message and tell the supervisor. An undecodable message is dead-lettered at
once: it would fail the same way on every redelivery.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import pykka
from google.protobuf.message import DecodeError
from pykka.typing import ActorMemberMixin, proxy_method

from actors.base import ActorThread, ConveyorActor, FailureHook, tell_safely
from actors.messages import BuildRequested, CancelRequested, StopConsuming
from broker.base import BuildQueue, Delivery
from conveyor.v1 import executor_pb2

if TYPE_CHECKING:  # the supervisor starts no queue actor itself: the runtime does
    from actors.supervisor import Supervisor

log = logging.getLogger(__name__)


class QueueActor(ConveyorActor):
    kind = "QueueActor"
    stop_on_failure = True  # its consumers go with it: no second consumer per crash

    def __init__(
        self,
        queue: BuildQueue,
        supervisor: pykka.ActorRef[Supervisor],
        *,
        prefetch: int,
        on_crash: FailureHook | None = None,
    ) -> None:
        super().__init__("queue", on_crash=on_crash)
        self.queue = queue
        self.supervisor = supervisor
        self.prefetch = prefetch
        self._builds = ActorThread("queue-builds", self._consume_builds)
        self._control = ActorThread("queue-control", self._consume_control)
        self._counts_lock = threading.Lock()

    def on_start(self) -> None:
        self._builds.start()
        self._control.start()
        self.state = "consuming"

    def on_stop(self) -> None:
        self.state = "stopping"
        self._builds.stop()
        self._control.stop()

    def stop_consuming(self) -> None:
        """Graceful shutdown, first step: take no new builds."""
        self._builds.stop()
        self.state = "draining"

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, StopConsuming):
            self.stop_consuming()
            return None
        return super().on_receive(message)

    def depth(self) -> int:
        return self.queue.depth()

    def _consume_builds(self, stop: threading.Event) -> None:
        self.queue.consume_builds(self._on_delivery, self.prefetch, stop)

    def _consume_control(self, stop: threading.Event) -> None:
        self.queue.consume_control(self._on_control, stop)

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self.counters[name] += 1

    def _on_delivery(self, delivery: Delivery) -> None:
        try:
            job = executor_pb2.BuildJob.FromString(delivery.body)
            if job.build_id <= 0:
                raise DecodeError(f"build_id must be positive, got {job.build_id}")
        except DecodeError as exc:
            self._count("poison")
            log.error("dead-lettering an undecodable build message (%d bytes): %s",
                      len(delivery.body), exc)
            delivery.reject(requeue=False)
            return
        self._count("received")
        if not tell_safely(self.supervisor, BuildRequested(job.build_id, job.attempt, delivery)):
            delivery.reject(requeue=True)

    def _on_control(self, body: bytes) -> None:
        try:
            control = executor_pb2.Control.FromString(body)
        except DecodeError:
            log.error("ignoring an undecodable control message (%d bytes)", len(body))
            return
        if control.HasField("cancel_build"):
            self._count("cancel_requests")
            tell_safely(self.supervisor, CancelRequested(control.cancel_build.build_id))


class QueueActorProxy(ActorMemberMixin, pykka.ActorProxy[QueueActor]):
    describe = proxy_method(QueueActor.describe)
    ping = proxy_method(QueueActor.ping)
    depth = proxy_method(QueueActor.depth)
    stop_consuming = proxy_method(QueueActor.stop_consuming)
