"""Every observability test starts from an empty metrics registry."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from observability import metrics


@pytest.fixture
def fresh() -> metrics.Metrics:
    return metrics.reset()


def sample(m: metrics.Metrics, name: str, **labels: str) -> float:
    """A sample's value; 0 when the series does not exist yet."""
    value = m.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def http_get(url: str, timeout: float = 10) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()
