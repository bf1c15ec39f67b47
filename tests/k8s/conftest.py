"""Fixtures for the Kubernetes emulator tests: an emulator per test and the official
client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiClient, Configuration

from support.k8s_emulator import Emulator, Settings

NS = "ci"

# Short timings keep the tests fast; nothing here waits on them except where a test
# is about the timing itself (bookmarks, grace periods).
FAST = Settings(bookmark_interval_s=0.2, pull_backoff_s=0.1, grace_cap_s=1.0)


@pytest.fixture
def settings() -> Settings:
    return FAST


@pytest.fixture
def emulator(tmp_path: Path, settings: Settings) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "emulator", settings=settings)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def api_client(emulator: Emulator) -> Iterator[ApiClient]:
    with ApiClient(Configuration(host=emulator.url)) as api:
        yield api


@pytest.fixture
def batch(api_client: ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture
def core(api_client: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)
