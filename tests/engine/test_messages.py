"""Every message of actors/messages.py is in the union of an actor that handles it, so
the actor's `match` (checked by mypy with assert_never) covers it."""

from __future__ import annotations

import dataclasses
import inspect
import typing

from actors import messages
from actors.backends.kubernetes import messages as k8s_messages

UNIONS = {
    "queue": messages.QueueMessage, "supervisor": messages.SupervisorMessage,
    "build": messages.BuildMessage, "job": messages.JobMessage, "log": messages.LogMessage,
    "backend": messages.BackendMessage, "kubernetes": k8s_messages.K8sMessage,
}


def members(union: object) -> set[type]:
    args = typing.get_args(union)
    return set(args) if args else {union}


def defined(module: object) -> set[type]:
    return {cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__}


def test_every_message_has_an_actor_that_handles_it() -> None:
    handled = set().union(*(members(union) for union in UNIONS.values()))
    # Describe is the one every actor answers (actors/base.py).
    unhandled = (defined(messages) | defined(k8s_messages)) - handled - {messages.Describe}
    assert {cls.__name__ for cls in unhandled} == set()


def test_no_two_messages_share_a_name() -> None:
    names = [cls.__name__ for cls in defined(messages) | defined(k8s_messages)]
    assert len(names) == len(set(names))
