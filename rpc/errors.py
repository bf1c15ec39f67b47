"""Domain errors servicers (and anything below them) raise; the interceptor maps them.

This module imports nothing from grpc so pure code can raise these errors too. The
mapping to status codes lives in ``rpc.interceptor`` — the only place that knows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: ``field`` is a path (``inputs.version``)."""

    field: str
    description: str


class DomainError(Exception):
    """Base of the errors a request can fail with that are the caller's to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request is malformed; carries one violation per bad field (INVALID_ARGUMENT)."""

    def __init__(
        self,
        field: str,
        message: str,
        *,
        violations: Iterable[FieldViolation] = (),
    ) -> None:
        more = tuple(violations)
        self.violations: tuple[FieldViolation, ...] = (
            more if more else (FieldViolation(field, message),)
        )
        super().__init__(f"{field}: {message}" if field else message)

    @classmethod
    def of(cls, violations: Iterable[FieldViolation], summary: str) -> InvalidArgument:
        """One error for several bad fields, with a summary as the status message."""
        found = tuple(violations)
        if not found:
            raise ValueError("InvalidArgument.of needs at least one violation")
        return cls("", summary, violations=found)


class FailedPrecondition(DomainError):
    """The request is fine but the resource is not in a state that allows it."""


class ResourceExhausted(DomainError):
    """A quota or bound was reached (too many lines, builds, bytes...)."""


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""


class Unauthenticated(DomainError):
    """The caller did not prove who they are (missing or bad token)."""
