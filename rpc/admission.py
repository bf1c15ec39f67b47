"""Which calls the server takes now: lanes with their own budgets (pure, thread-safe).

One shared bound on every call (gRPC's ``maximum_concurrent_rpcs``) let 32 idle calls, or
a few viewers' log follows, refuse everybody — health checks and instance admins too.
Here each kind of call has its own lane, each lane a budget and (in ``rpc.gatekeeper``)
its own worker threads, so one lane filling up never blocks another:

- health checks, and open streams (health watches, reflection), need no token;
- users' unary calls and users' streams have a global budget and a per-user one;
- instance admins' calls and streams have reserved lanes, and when those are full they
  may use the users' lanes beyond the per-user budget;
- the pipeline service's internal calls to ExecutorService have their own lane.

Unauthenticated calls never get here: ``rpc.gatekeeper`` refuses them first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import Enum

from rpc.errors import ResourceExhausted
from rpc.stream_limit import Budget
from runtime_config import MAX_STREAMS_PER_USER


class Lane(Enum):
    HEALTH = "health checks"
    OPEN_STREAMS = "open streams"
    CALLS = "calls"
    STREAMS = "streams"
    ADMIN_CALLS = "admin calls"
    ADMIN_STREAMS = "admin streams"
    INTERNAL = "internal calls"


# What a full lane means for readiness: users (or the pipeline service) are refused.
_SATURATING = (Lane.CALLS, Lane.STREAMS, Lane.INTERNAL)


@dataclass(frozen=True)
class Limits:
    """How many calls of each lane run at once, and how long a request may take to come.

    A stream holds its thread for as long as it follows a build, a unary call only for
    its own work, so streams get a lane of their own. ``receive_timeout_s`` bounds how
    long an admitted call may take to send its request message (a client that sends
    headers and then nothing gives its slot back after that).
    """

    calls: int = 32
    calls_per_user: int = 16
    streams: int = 64
    streams_per_user: int = MAX_STREAMS_PER_USER
    admin_calls: int = 8
    admin_streams: int = 8
    internal_calls: int = 32
    health_checks: int = 4
    open_streams: int = 4
    receive_timeout_s: float = 10.0
    open_receive_timeout_s: float = 2.0  # a health check's request comes with its headers

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {value}")

    def size(self, lane: Lane) -> int:
        return {
            Lane.HEALTH: self.health_checks, Lane.OPEN_STREAMS: self.open_streams,
            Lane.CALLS: self.calls, Lane.STREAMS: self.streams,
            Lane.ADMIN_CALLS: self.admin_calls, Lane.ADMIN_STREAMS: self.admin_streams,
            Lane.INTERNAL: self.internal_calls,
        }[lane]


@dataclass(frozen=True)
class Owner:
    """Whose call a ticket is: what ``Admission.cancel`` matches."""

    user_id: int
    token_id: int


Choice = tuple[Lane, str | None]
"""A lane to try, and the user counted against its per-user budget (None: not counted)."""


class Ticket:
    """One admitted call's place in its lane; `release` (idempotent) gives it back."""

    def __init__(self, admission: Admission, lane: Lane, user: str | None,
                 owner: Owner | None) -> None:
        self.lane = lane
        self.user = user
        self.owner = owner
        self._admission = admission
        self._released = False
        self._cancel: Callable[[], None] | None = None
        self._cancelled = False

    def on_cancel(self, cancel: Callable[[], None]) -> None:
        """What ``Admission.cancel`` calls to end this call (set once it runs)."""
        run_now = False
        with self._admission.lock:
            self._cancel = cancel
            run_now = self._cancelled
        if run_now:
            cancel()

    def release(self) -> None:
        self._admission.release(self)

    @property
    def released(self) -> bool:
        return self._released


class Admission:
    """The lanes of one server and the tickets admitted to them."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        per_user = {Lane.CALLS: limits.calls_per_user, Lane.STREAMS: limits.streams_per_user}
        hints = {Lane.STREAMS: ": close one (or stop following) first"}
        self._budgets = {
            lane: Budget(lane.value, total=limits.size(lane), per_user=per_user.get(lane),
                         state="open" if "stream" in lane.value else "in progress",
                         hint=hints.get(lane, ""))
            for lane in Lane
        }
        self._tickets: set[Ticket] = set()

    def admit(self, choices: Sequence[Choice], owner: Owner | None = None) -> Ticket:
        """A ticket in the first lane of ``choices`` with room; `ResourceExhausted`, with
        the first lane's reason, when none has."""
        if not choices:
            raise ValueError("admit needs at least one lane")
        first_reason = ""
        for lane, user in choices:
            budget = self._budgets[lane]
            try:
                budget.take(user)
            except ResourceExhausted as exc:
                first_reason = first_reason or exc.message
                continue
            ticket = Ticket(self, lane, user, owner)
            with self.lock:
                self._tickets.add(ticket)
                self._changed.notify_all()
            return ticket
        raise ResourceExhausted(first_reason)

    def release(self, ticket: Ticket) -> None:
        with self.lock:
            if ticket._released:
                return
            ticket._released = True
            self._tickets.discard(ticket)
            self._budgets[ticket.lane].give(ticket.user)
            self._changed.notify_all()

    def cancel(self, *, user_id: int | None = None, token_ids: Collection[int] = (),
               spare: object = None) -> int:
        """End the running calls of a user, or of some tokens (a user was disabled, a
        token revoked), except the ticket ``spare`` (the call asking); returns how many
        were ended."""
        chosen: list[Callable[[], None]] = []
        matched = 0
        with self.lock:
            for ticket in self._tickets:
                owner = ticket.owner
                if owner is None or ticket._cancelled or ticket is spare:
                    continue
                if owner.user_id == user_id or owner.token_id in token_ids:
                    matched += 1
                    ticket._cancelled = True  # a call not yet running ends when it starts
                    if ticket._cancel is not None:
                        chosen.append(ticket._cancel)
        for cancel in chosen:
            cancel()
        return matched

    def wait_until(self, lane: Lane, held: int, timeout: float) -> bool:
        """Wait until exactly ``held`` calls run in ``lane`` (tests and benches)."""
        budget = self._budgets[lane]
        with self._changed:
            return self._changed.wait_for(lambda: budget.held() == held, timeout)

    def in_use(self) -> dict[Lane, tuple[int, int]]:
        """Per lane: (calls running, the lane's size)."""
        return {lane: (budget.held(), self.limits.size(lane))
                for lane, budget in self._budgets.items()}

    def held_by(self, lane: Lane, user: str) -> int:
        return self._budgets[lane].held_by(user)

    def saturation(self) -> str | None:
        """Why the server is saturated (a lane users depend on is full), or None."""
        full = [f"{lane.value}: {held} of {size} in use"
                for lane, (held, size) in self.in_use().items()
                if lane in _SATURATING and held >= size]
        return "; ".join(full) or None
