"""Kubernetes' ``$(VAR)`` expansion of container command, args and env values.

It is easy to forget that the apiserver's containers expand ``$(NAME)`` and reduce
``$$`` to ``$`` (so ``echo $$`` prints ``$``); the emulator reproduces it so a backend
that forgets to escape its scripts fails here rather than on a real cluster."""

from __future__ import annotations

import re
from collections.abc import Mapping

# ``$$``, ``$(NAME)``, or ``$`` with whatever follows (a lone ``$(`` with no ``)``).
_TOKEN = re.compile(r"\$(\$|\(([^)]*)\)|.)", re.DOTALL)


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand as Kubernetes does: ``$$`` → ``$``, ``$(known)`` → its value, rest as is."""
    if "$" not in text:  # the common case, and scripts are long
        return text

    def one(match: re.Match[str]) -> str:
        token = match.group(1)
        if token == "$":
            return "$"
        name = match.group(2)
        if name is not None:
            return env.get(name, f"$({name})")
        return match.group(0)

    return _TOKEN.sub(one, text)
