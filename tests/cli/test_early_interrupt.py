"""Ctrl-C at the earliest moments of any command: no traceback, the process ends as
interrupted (exit 130, or killed by SIGINT, which a shell also reports as 130).

The moments are module imports, the ~0.1 s every command spends before it can catch
anything. A hook on the import system (installed before `cli.main` is imported, as
`python -m` would import it) sends SIGINT to the process when a chosen module is about
to be imported: the signal arrives at exactly that import, every time, without delays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Counts the modules imported on the main thread once `cli.main` starts being imported
# and before any other thread exists (later, a command's own Ctrl-C handling applies).
# CONVEYOR_TEST_RECORD: a file to list them in; CONVEYOR_TEST_SIGINT_AT: the module at
# whose import SIGINT is sent.
HOOK = """
import _thread, os, runpy, sys
record = os.environ.get("CONVEYOR_TEST_RECORD")
target = os.environ.get("CONVEYOR_TEST_SIGINT_AT")
main_thread = _thread.get_ident()

class Hook:
    armed = False

    @classmethod
    def find_spec(cls, name, path=None, module=None):
        if name == "cli.main":
            cls.armed = True
        elif cls.armed and _thread.get_ident() == main_thread and _thread._count() == 0:
            if record:
                with open(record, "a") as f:
                    f.write(name + "\\n")
            if name == target:
                os.kill(os.getpid(), 2)
        return None

sys.meta_path.insert(0, Hook)
sys.argv = ["conveyor", *sys.argv[1:]]
runpy.run_module("cli.main", run_name="__main__", alter_sys=True)
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONVEYOR_")}
    env.update({"PYTHONUNBUFFERED": "1", "CONVEYOR_HOME": str(tmp_path / "home")}, **extra)
    return env


def _conveyor(tmp_path: Path, args: tuple[str, ...],
              **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HOOK, *args], cwd=ROOT,
                          env=_env(tmp_path, **extra), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def imported_early(tmp_path: Path, args: tuple[str, ...]) -> list[str]:
    record = tmp_path / "imports.txt"
    done = _conveyor(tmp_path, args, CONVEYOR_TEST_RECORD=str(record))
    assert "Traceback" not in done.stderr, done.stderr
    names = record.read_text().split()
    assert names, done.stderr  # the hook saw the command's imports
    return names


def moments(names: list[str], count: int = 8) -> list[str]:
    """The first imports (where the program cannot have caught anything yet), then
    imports spread over the rest."""
    step = max(1, len(names) // count)
    return list(dict.fromkeys(names[:4] + names[4::step]))


COMMANDS = {
    "run": ("run", "examples/hello.yaml"),
    "validate": ("validate", "examples/hello.yaml"),
    "status": ("status", "1", "--addr", "127.0.0.1:1"),
    "help": ("--help",),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_ctrl_c_at_any_early_import_is_no_traceback(command: str, tmp_path: Path) -> None:
    args = COMMANDS[command]
    names = imported_early(tmp_path, args)
    for name in moments(names):
        done = _conveyor(tmp_path, args, CONVEYOR_TEST_SIGINT_AT=name)
        assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, (
            f"SIGINT at `import {name}`:\n{done.stderr}")
        assert done.returncode in (130, -signal.SIGINT), (
            f"SIGINT at `import {name}`: exit {done.returncode}\n{done.stderr}")
