"""Kubernetes' ``$(VAR)`` expansion of container command, args and env values.

It is easy to forget that the apiserver's containers expand ``$(NAME)`` and reduce
``$$`` to ``$`` (so ``echo $$`` prints ``$``); the emulator reproduces it so a backend
that forgets to escape its scripts fails here rather than on a real cluster."""

from __future__ import annotations

from collections.abc import Mapping


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand as Kubernetes does: ``$$`` → ``$``, ``$(known)`` → its value, rest as is."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2 : close]
                out.append(env.get(name, f"$({name})"))
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)
