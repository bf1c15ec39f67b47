"""The client commands' errors when no server is needed (or none answers): one line, the
hint, JSON under --json, help text, and exit codes (the README's promises)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli import build_cmd, console, errors, identity_cmd, pipeline_cmd, validate
from cli import run as run_cmd

ROOT = Path(__file__).resolve().parents[2]

# Every client command with arguments that reach the server (which is not there).
CLIENT_CALLS = [
    ("pipeline", "list"), ("pipeline", "show", "web"), ("member", "list", "web"),
    ("trigger", "web"), ("builds",), ("status", "1"), ("logs", "1"), ("cancel", "1"),
    ("retry", "1"), ("token", "list"), ("user", "create", "bob"), ("whoami",),
]


def conveyor(*args: str, addr: str = "", stdout: int | None = None,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # Buffered output, as a user's: a closed pipe then shows when stdout is flushed.
    env = {**os.environ, "CONVEYOR_TOKEN": "cvy_none"}
    env.pop("PYTHONUNBUFFERED", None)
    if addr:
        env["CONVEYOR_ADDR"] = addr
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
                          stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=subprocess.PIPE, input=stdin, text=True, timeout=60)


def closed_pipe_run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader is gone, as in `conveyor ... | head -0`."""
    read, write = os.pipe()
    os.close(read)
    try:
        return conveyor(*args, stdout=write)
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def dead_addr() -> Iterator[str]:
    """An address where nothing listens: a bound socket that never listens refuses."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("call", [*CLIENT_CALLS, ("console", "--once")],
                         ids=lambda c: " ".join(c))
def test_no_server_is_one_line_with_a_hint(call: tuple[str, ...], dead_addr: str) -> None:
    done = conveyor(*call, addr=dead_addr)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith(f"conveyor {call[0]}: cannot reach a Conveyor server at {dead_addr}")
    assert "`conveyor serve` running" in line and "CONVEYOR_ADDR" in line
    assert done.stdout == ""


@pytest.mark.parametrize("call", CLIENT_CALLS, ids=lambda c: " ".join(c))
def test_no_server_under_json_is_a_json_error_on_stdout(call: tuple[str, ...],
                                                         dead_addr: str) -> None:
    done = conveyor(*call, "--json", addr=dead_addr)
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "UNAVAILABLE" and "conveyor serve" in error["message"]
    assert error["details"] == []


@pytest.mark.parametrize("call", [
    ("validate", "{missing}"),
    ("pipeline", "create", "web", "-f", "{missing}"),
    ("pipeline", "update", "web", "-f", "{missing}"),
    ("run", "{missing}"),
], ids=lambda c: " ".join(c[:2]))
def test_a_missing_file_is_one_line(call: tuple[str, ...], tmp_path: Path,
                                    dead_addr: str) -> None:
    missing = str(tmp_path / "ci.yml")
    argv = [a.replace("{missing}", missing) for a in call]
    done = conveyor(*argv, addr=dead_addr)
    assert done.returncode == 2
    assert one_line(done.stderr) == (
        f"conveyor {call[0]}: cannot read {missing}: No such file or directory")
    as_json = conveyor(*argv, "--json", addr=dead_addr)
    assert as_json.returncode == 2
    error = json.loads(as_json.stdout)["error"]
    assert error == {"code": "INVALID_ARGUMENT", "details": [],
                     "message": f"cannot read {missing}: No such file or directory"}


@pytest.mark.parametrize("argv, message", [
    (("status", "abc"), "BUILD must be a build id (a number), got 'abc'"),
    (("status",), "the following arguments are required: build"),
    (("pipeline", "create", "web"), "the following arguments are required: --file/-f"),
    (("builds", "--limit", "0"), "--limit must be at least 1, got 0"),
    (("token", "create", "--ttl", "soon"), "'soon' is not a duration: use e.g. 3600, 90m, "
                                           "12h or 30d"),
    (("validate",), "the following arguments are required: file"),
    (("run",), "the following arguments are required: file"),
    (("run", "examples/hello.yaml", "--input", "who"), "--input 'who': expected NAME=VALUE"),
    (("token", "list", "--bogus"), "unrecognized arguments: --bogus"),
    (("pipeline", "show", "web", "extra"), "unrecognized arguments: extra"),
], ids=lambda a: " ".join(a) if isinstance(a, tuple) else "")
def test_usage_errors_are_json_under_json(argv: tuple[str, ...], message: str,
                                          dead_addr: str) -> None:
    done = conveyor(*argv, "--json", addr=dead_addr)
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout) == {
        "error": {"code": "INVALID_ARGUMENT", "message": message, "details": []}}
    assert done.stderr.splitlines()[-1].endswith(f": {message}")


@pytest.mark.parametrize("argv", [("token", "list", "--bogus"), ("pipeline", "list", "x"),
                                  ("admin", "bootstrap", "--bogus")], ids=" ".join)
def test_a_stray_argument_is_named_by_the_sub_command(argv: tuple[str, ...]) -> None:
    # As argparse names every other usage error of a sub-command: by its usage line.
    done = conveyor(*argv)
    assert done.returncode == 2 and done.stdout == ""
    usage, error = done.stderr.splitlines()[0], done.stderr.splitlines()[-1]
    prog = f"conveyor {argv[0]} {argv[1]}"
    assert usage.startswith(f"usage: {prog} ") and error.startswith(f"{prog}: unrecognized")


def test_no_arguments_is_a_usage_error_and_help_is_not() -> None:
    bare = conveyor()
    assert bare.returncode == 2 and bare.stdout == ""
    assert bare.stderr.startswith("usage: conveyor <command>")
    for spelling in ("--help", "-h", "help"):
        asked = conveyor(spelling)
        assert asked.returncode == 0 and asked.stderr == ""
        assert asked.stdout == bare.stderr
    unknown = conveyor("frobnicate")
    assert unknown.returncode == 2 and "unknown command 'frobnicate'" in unknown.stderr


def test_usage_lists_every_exit_code_the_readme_promises() -> None:
    usage = " ".join(conveyor("--help").stdout.split())
    codes = usage[usage.index("Exit codes:"):]
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    promised = readme[readme.index("Exit codes: 0 success"):]
    for code, meaning in (("130", "interrupted"), ("141", "output closed early")):
        assert f"{code} {meaning}" in promised
        assert f"{code} {meaning}" in codes, codes


def test_help_says_which_commands_take_json() -> None:
    usage = conveyor("--help").stdout
    for command in ("console", "serve", "db migrate"):
        line = next(li for li in usage.splitlines() if li.strip().startswith(command))
        assert "no --json" in line, line
    assert "There is no --json" in conveyor("console", "--help").stdout


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _parser_of(main: Callable[[list[str]], int], monkeypatch: pytest.MonkeyPatch
               ) -> argparse.ArgumentParser:
    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(errors.Parser, "parse_args", capture)
    with pytest.raises(_Parsed) as parsed:
        main([])
    return parsed.value.parser


def _undocumented(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{parser.prog} {name}")
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                missing.extend(_undocumented(sub))
    return missing


MAINS: dict[str, Callable[[list[str]], int]] = {
    "pipeline": pipeline_cmd.pipeline_main, "member": pipeline_cmd.member_main,
    "trigger": build_cmd.trigger_main, "builds": build_cmd.builds_main,
    "status": build_cmd.status_main, "logs": build_cmd.logs_main,
    "cancel": build_cmd.cancel_main, "retry": build_cmd.retry_main,
    "token": identity_cmd.token_main, "user": identity_cmd.user_main,
    "whoami": identity_cmd.whoami_main, "validate": validate.main, "console": console.main,
    "admin": identity_cmd.admin_main, "run": run_cmd.main,
}


@pytest.mark.parametrize("command", sorted(MAINS))
def test_every_option_has_help_text(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _undocumented(_parser_of(MAINS[command], monkeypatch)) == []


@pytest.mark.parametrize("argv", [("--help",), ("validate", "examples/diamond.yaml"),
                                  ("trigger", "--help"), ("status", "--json")], ids=" ".join)
def test_output_into_a_closed_pipe_exits_quietly(argv: tuple[str, ...]) -> None:
    done = closed_pipe_run(*argv)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
