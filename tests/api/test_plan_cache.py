"""A workflow is validated once per content, and large ones one at a time (issue 11:
validating a ~1 MB workflow of expressions cost 5.4 s of CPU, again on every build)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import store
import workflow
from conveyor.v1 import pipeline_pb2 as pb
from rpc.errors import ResourceExhausted
from rpc.plans import Plans
from tests.api.conftest import WORKFLOW, Api
from workflow.errors import WorkflowInvalid


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every text validated (by workflow.load or workflow.validate) while the test runs."""
    seen: list[str] = []
    real_load, real_validate = workflow.load, workflow.validate

    def load(text: str, **kwargs: object) -> object:
        seen.append(text)
        return real_load(text, **kwargs)  # type: ignore[arg-type]

    def validate(text: str) -> object:
        seen.append(text)
        return real_validate(text)

    monkeypatch.setattr(workflow, "load", load)
    monkeypatch.setattr(workflow, "validate", validate)
    yield seen


def test_builds_do_not_validate_the_workflow_again(api: Api, loads: list[str]) -> None:
    alice = api.client("alice").pipelines
    alice.CreatePipeline(pb.CreatePipelineRequest(name="web", workflow_yaml=WORKFLOW))
    for _ in range(3):
        alice.StartPipelineBuild(pb.StartPipelineBuildRequest(pipeline="web"))
    assert alice.ValidateWorkflow(pb.ValidateWorkflowRequest(workflow_yaml=WORKFLOW)).valid
    assert loads == [WORKFLOW]
    assert len(store.list_builds(limit=10)) == 3


def test_invalid_texts_are_remembered_too(loads: list[str]) -> None:
    plans = Plans()
    for _ in range(2):
        with pytest.raises(WorkflowInvalid):
            plans.load("jobs: 3")
        assert plans.errors("jobs: 3")
    assert loads == ["jobs: 3"]


def test_the_same_text_asked_at_once_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []
    real = workflow.load

    def slow(text: str, **kwargs: object) -> object:
        calls.append(text)
        started.set()
        release.wait(10)
        return real(text)

    monkeypatch.setattr(workflow, "load", slow)
    plans = Plans()
    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(plans.load(WORKFLOW)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: results.append(plans.load(WORKFLOW)))
    second.start()
    release.set()
    first.join()
    second.join()
    assert calls == [WORKFLOW] and len(results) == 2 and results[0] is results[1]


def test_large_workflows_are_validated_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    real = workflow.load

    def slow(text: str, **kwargs: object) -> object:
        started.set()
        release.wait(10)
        return real(text)

    monkeypatch.setattr(workflow, "load", slow)
    plans = Plans(heavy_bytes=10, wait_s=0)
    other = WORKFLOW + "# another text\n"
    thread = threading.Thread(target=lambda: plans.load(WORKFLOW))
    thread.start()
    assert started.wait(10)
    with pytest.raises(ResourceExhausted, match="validating other large workflows"):
        plans.load(other)
    release.set()
    thread.join()
    assert plans.load(other).jobs


def test_the_cache_is_bounded_by_the_size_of_its_texts() -> None:
    texts = [WORKFLOW + f"# {i}\n" for i in range(3)]
    plans = Plans(max_bytes=len(texts[0]) * 2)
    for text in texts:
        plans.load(text)
    assert plans.validations == 3
    plans.load(texts[2])
    plans.load(texts[1])
    assert plans.validations == 3  # the two newest stay
    plans.load(texts[0])
    assert plans.validations == 4  # the oldest was dropped
