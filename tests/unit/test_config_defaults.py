"""Each default is defined once (runtime_config) and the README's configuration table
states the same values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import runtime_config as rc
from actors.backends.kubernetes.calls import K8sSettings
from actors.build_actor import BuildActor
from actors.log_actor import LogActor
from actors.logbatch import LogBatcher
from actors.supervisor import SupervisorConfig
from cli.client_common import DEFAULT_ADDR
from rpc.admission import Limits
from rpc.pipeline_service import PipelineServicer
from runtime_config import Config

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def readme_defaults() -> dict[str, str]:
    """Each variable of the README's configuration table with the default it states (a
    row naming two variables states one default for both, or one each)."""
    found: dict[str, str] = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = re.findall(r"`(CONVEYOR_\w+)`", cells[0]) if len(cells) == 3 else []
        values = [v.strip().strip("`").split(" ")[0] for v in cells[1].split(",")] if names else []
        for i, name in enumerate(names):
            found[name] = values[i] if len(values) == len(names) else values[0]
    return found


@pytest.mark.parametrize(("variable", "value"), [
    ("CONVEYOR_LISTEN", rc.LISTEN),
    ("CONVEYOR_ADDR", rc.LISTEN),
    ("CONVEYOR_MAX_JOBS", rc.MAX_JOBS),
    ("CONVEYOR_MAX_BUILDS", rc.MAX_BUILDS),
    ("CONVEYOR_MAX_QUEUED_PER_PIPELINE", rc.MAX_QUEUED_PER_PIPELINE),
    ("CONVEYOR_MAX_STREAMS_PER_USER", rc.MAX_STREAMS_PER_USER),
    ("CONVEYOR_MAX_JOB_LOG_BYTES", rc.MAX_JOB_LOG_BYTES),
    ("CONVEYOR_QUEUE_NAME", rc.QUEUE_NAME),
    ("CONVEYOR_QUEUE_PREFIX", rc.QUEUE_PREFIX),
    ("CONVEYOR_LEASE_S", rc.LEASE_S),
    ("CONVEYOR_RECONCILE_S", rc.RECONCILE_S),
    ("CONVEYOR_DEFAULT_IMAGE", rc.DEFAULT_IMAGE),
])
def test_the_readme_states_the_defaults(variable: str, value: object) -> None:
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    assert readme_defaults().get(variable) == shown


def test_the_components_default_to_the_configurations_values() -> None:
    """Built directly (as tests and benches do), the components behave as configured."""
    config = Config()
    supervisor = SupervisorConfig()
    assert (supervisor.max_builds, supervisor.max_jobs, supervisor.lease_s,
            supervisor.reconcile_every_s) == (config.max_builds, config.max_jobs,
                                              config.lease_s, config.reconcile_s)
    assert BuildActor.__init__.__kwdefaults__["lease_s"] == config.lease_s
    assert LogBatcher().max_job_bytes == config.max_job_log_bytes
    assert LogActor.__init__.__kwdefaults__["max_job_bytes"] == config.max_job_log_bytes
    pipeline = PipelineServicer.__init__.__kwdefaults__
    assert (pipeline["max_queued_per_pipeline"], pipeline["max_streams_per_user"]) == (
        config.max_queued_per_pipeline, config.max_streams_per_user)
    settings = K8sSettings(configuration=None, namespace="ci")
    assert (settings.default_image, settings.pending_timeout_s) == (
        config.image, config.k8s_pending_timeout_s)
    assert Limits().streams_per_user == config.max_streams_per_user
    assert config.listen == DEFAULT_ADDR
