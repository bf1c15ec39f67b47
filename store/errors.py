"""Errors the store raises: callers never see peewee or driver exceptions."""

from __future__ import annotations


class StoreError(Exception):
    """A database operation failed for a reason that retrying will not fix."""


class StoreUnavailable(StoreError):
    """The database stayed unreachable for the whole retry budget."""


class NotFound(StoreError):
    """The named pipeline, build, job or snapshot does not exist."""


class Conflict(StoreError):
    """The change contradicts what is stored (a duplicate name, an illegal state move)."""


class JobsStillRunning(Conflict):
    """A build cannot be final: an attempt of one of its jobs is still queued or running."""


class InvalidState(StoreError):
    """The row is not in a state that allows the change (retrying a running build)."""


class LimitReached(StoreError):
    """A bound on stored work was reached (too many queued builds in one pipeline)."""
