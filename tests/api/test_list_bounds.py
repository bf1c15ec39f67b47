"""Lists stay readable whatever the rows hold, and new rows are bounded (issue 11):
five pipelines with 3.5 MiB descriptions made ListPipelines, ListBuilds and
`conveyor pipeline list` fail (18 MB > the 16 MiB send limit)."""

from __future__ import annotations

import json

import grpc
import pytest

import store
from conveyor.v1 import pipeline_pb2 as pb
from rpc import paging
from rpc.client import Client
from rpc.validation import MAX_DESCRIPTION, MAX_INPUTS_CHARS
from tests.api.conftest import WORKFLOW, Api
from tests.rpc.helpers import call_error, field_violations

BIG = "d" * (3 * 1024 * 1024 + 512 * 1024)  # 3.5 MiB, written before the field limits
WITH_INPUT = WORKFLOW.replace("        default: staging\n",
                              "        default: staging\n      note: {default: ''}\n")


def _all_pipelines(client: Client) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = client.pipelines.ListPipelines(pb.ListPipelinesRequest(page_token=token))
        assert page.ByteSize() <= paging.MAX_PAGE_BYTES + len(BIG)
        names.extend(p.name for p in page.pipelines)
        token = page.next_page_token
        if not token:
            return names


def test_pipelines_with_huge_descriptions_still_list(
    api: Api, capsys: pytest.CaptureFixture[str],
) -> None:
    root = store.get_user("root").id
    for i in range(5):
        store.create_pipeline(f"big{i}", WORKFLOW, description=BIG, admin_id=root)
    store.create_pipeline("small", WORKFLOW, admin_id=root)
    expected = [f"big{i}" for i in range(5)] + ["small"]
    assert _all_pipelines(api.client("root")) == expected
    from cli.pipeline_cmd import pipeline_main

    assert pipeline_main(["list", "--addr", api.address, "--token", api.tokens["root"],
                          "--json"]) == 0
    assert [p["name"] for p in json.loads(capsys.readouterr().out)] == expected


def test_builds_with_huge_inputs_still_list(api: Api) -> None:
    web = store.create_pipeline("web", WITH_INPUT, admin_id=store.get_user("root").id)
    for _ in range(6):
        store.create_build(web.id, workflow_yaml=WITH_INPUT, inputs={"note": BIG})
    root = api.client("root")
    seen: list[int] = []
    token = ""
    while True:
        page = root.pipelines.ListBuilds(pb.ListBuildsRequest(pipeline="web", page_token=token))
        seen.extend(b.id for b in page.builds)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)


def test_a_page_is_bounded_by_bytes_and_count() -> None:
    class Row:
        def __init__(self, id: int) -> None:
            self.id = id

    def message(row: Row) -> pb.ListPipelinesRequest:
        return pb.ListPipelinesRequest(page_token="x" * 1000)

    rows = [Row(i) for i in range(1, 12)]
    page, token = paging.fill("pipelines", rows, 10, message, max_bytes=5000)
    assert len(page) == 4 and paging.decode("pipelines", token) == 4
    page, token = paging.fill("pipelines", rows, 10, message, max_bytes=10)
    assert len(page) == 1 and paging.decode("pipelines", token) == 1  # one, whatever its size
    page, token = paging.fill("pipelines", rows[:3], 10, message)
    assert len(page) == 3 and token == ""
    page, token = paging.fill("pipelines", rows, 10, message)
    assert len(page) == 10 and paging.decode("pipelines", token) == 10


def test_descriptions_are_bounded(api: Api) -> None:
    alice = api.client("alice").pipelines
    error = call_error(lambda: alice.CreatePipeline(pb.CreatePipelineRequest(
        name="web", workflow_yaml=WORKFLOW, description=BIG)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [
        ("description", f"is {len(BIG):,} characters long; the limit is {MAX_DESCRIPTION:,}")]
    alice.CreatePipeline(pb.CreatePipelineRequest(name="web", workflow_yaml=WORKFLOW,
                                                  description="x" * MAX_DESCRIPTION))
    error = call_error(lambda: alice.UpdatePipeline(pb.UpdatePipelineRequest(
        name="web", description="y" * (MAX_DESCRIPTION + 1))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("inputs", [{"note": "v" * MAX_INPUTS_CHARS},
                                    {f"i{n}": "v" * 100 for n in range(700)}])
def test_inputs_are_bounded(api: Api, inputs: dict[str, str]) -> None:
    store.create_pipeline("web", WITH_INPUT, admin_id=store.get_user("alice").id)
    error = call_error(lambda: api.client("alice").pipelines.StartPipelineBuild(
        pb.StartPipelineBuildRequest(pipeline="web", inputs=inputs)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(error)
    assert field == "inputs" and description.endswith(f"the limit is {MAX_INPUTS_CHARS:,}")
