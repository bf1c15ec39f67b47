"""JSON logs: one object per line, with the build and job of the actor that logged."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.base import ConveyorActor
from observability.logs import JsonFormatter, LogFormatError, make_handler
from tests.observability.conftest import http_get

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger("tests.observability.json")
    handler = make_handler("json", stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class _Talker(ConveyorActor):
    def __init__(self, logger: logging.Logger) -> None:
        super().__init__("build/41/test")
        self.build_id = 41
        self.job_key = "test (3.11)"
        self.logger = logger

    def on_receive(self, message: Any) -> Any:
        self.logger.info("step %s done", message)
        self.logger.info("explicit", extra={"build_id": 7, "job_key": "other"})
        return None


def test_records_carry_extra_context_and_exceptions(
        captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.warning("lease lost for build %s", 12, extra={"build_id": 12, "job_key": "lint"})
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("it failed")
    logger.info("plain")
    first, second, third = _records(stream)
    assert first["message"] == "lease lost for build 12"
    assert (first["level"], first["logger"]) == ("WARNING", "tests.observability.json")
    assert (first["build_id"], first["job_key"]) == (12, "lint")
    assert first["time"].endswith("+00:00")
    assert second["exception"].startswith("Traceback") and "ValueError: bad" in second["exception"]
    assert "build_id" not in third and "job_key" not in third


def test_records_logged_on_an_actor_thread_carry_its_build_and_job(
        captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    ref = _Talker.start(logger)
    try:
        ref.ask("checkout", timeout=10)
    finally:
        ref.stop()
    implicit, explicit = _records(stream)
    assert implicit["message"] == "step checkout done"
    assert (implicit["build_id"], implicit["job_key"]) == (41, "test (3.11)")
    assert implicit["thread"].startswith("_Talker-")
    assert (explicit["build_id"], explicit["job_key"]) == (7, "other")  # extra wins


def test_the_formatter_keeps_one_record_on_one_line() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "two\nlines", None, None)
    line = JsonFormatter().format(record)
    assert "\n" not in line and json.loads(line)["message"] == "two\nlines"


def test_an_unknown_format_is_an_error_naming_the_variable() -> None:
    with pytest.raises(LogFormatError, match=r"CONVEYOR_LOG_FORMAT must be one of text, json, "
                                             r"got 'xml'"):
        make_handler("xml")


def test_serve_logs_json_and_answers_its_probes(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVEYOR_LISTEN": "127.0.0.1:0",
        "CONVEYOR_METRICS_LISTEN": "127.0.0.1:0",
        "CONVEYOR_LOG_FORMAT": "json",
        "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "CONVEYOR_WORKDIR": str(tmp_path / "work"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--role", "all", "--log-level", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        assert first.startswith("conveyor serving role all on "), first + proc.stderr.read()
        lines: list[str] = []
        while not any("metrics and probes on" in line for line in lines):
            line = proc.stderr.readline()
            assert line, "serve exited before logging its metrics address: " + "".join(lines)
            lines.append(line)
        url = json.loads(lines[-1])["message"].rsplit(" ", 1)[1].removesuffix("/metrics")
        assert http_get(url + "/healthz")[0] == 200
        assert http_get(url + "/readyz")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        lines += proc.stderr.read().splitlines(keepends=True)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["logger"] == "conveyor.runtime" and "listening on" in r["message"]
               for r in records)
    assert any("shutting down gracefully" in r["message"] for r in records)
