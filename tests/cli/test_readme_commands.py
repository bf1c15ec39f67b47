"""The README's command blocks run verbatim, in order, on a fresh install.

A newcomer copies them top to bottom; so does this test. It extracts every ```sh block
of README.md, joins them into one bash script run with `set -euo pipefail` in a fresh
HOME (so the embedded database and key files are new), from the repository root, with
the services the README's defaults would use moved to free ports so the test cannot
clash with anything else on the machine. Only two kinds of line are not run as written:
`make test` (this test is part of it) and comments. A line ending in `&` starts a
background process that the test stops at the end.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
SKIPPED = ("make test",)


def readme_blocks(text: str) -> list[str]:
    return [m.group(1) for m in FENCE.finditer(text)]


def script_lines(blocks: list[str]) -> list[str]:
    """The README's commands, one per element, comments and skipped commands removed."""
    lines: list[str] = []
    for block in blocks:
        for raw in block.splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or line.startswith(SKIPPED):
                continue
            lines.append(line)
    return lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_script_lines_skip_only_comments_and_the_test_command() -> None:
    blocks = readme_blocks("x\n```sh\nmake run   # go\n# note\nmake test\n```\n"
                           "```python\nnot shell\n```\n```sh\necho hi &\n```\n")
    assert script_lines(blocks) == ["make run   # go", "echo hi &"]


@pytest.mark.slow
def test_readme_command_blocks_run_in_order_on_a_fresh_install(tmp_path: Path) -> None:
    lines = script_lines(readme_blocks((ROOT / "README.md").read_text(encoding="utf-8")))
    assert len(lines) > 10, "the README lost its command blocks"
    port, metrics = _free_port(), _free_port()
    home = tmp_path / "home"
    home.mkdir()
    # Each command is echoed before it runs, so a failure names the README line.
    body = "\n".join(f"printf '%s\\n' {_quote('$ ' + line)} >&2\n{line}" for line in lines)
    script = ("set -euo pipefail\n"
              "trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT\n" + body + "\n")
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith("CONVEYOR_") and key != "VIRTUAL_ENV"
    }
    env.update({
        "HOME": str(home),
        "CONVEYOR_LISTEN": f"127.0.0.1:{port}",
        "CONVEYOR_ADDR": f"127.0.0.1:{port}",
        "CONVEYOR_METRICS_LISTEN": f"127.0.0.1:{metrics}",
    })
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (
        f"README commands failed (exit {done.returncode}):\n--- stderr\n{done.stderr[-6000:]}"
        f"\n--- stdout\n{done.stdout[-3000:]}")
    # `conveyor token revoke 2   # bob's token` follows a listing that shows that token
    # (the only table of tokens the README prints).
    assert re.search(r"^2\s+cli\s+bob\s+active\s", done.stdout, re.M), done.stdout[-3000:]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
