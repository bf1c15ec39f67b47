"""Log persistence through the engine: volume, order, and resume from a line."""

from __future__ import annotations

from pathlib import Path

from support.harness import engine


def test_100k_lines_are_persisted_in_order_and_streamed(tmp_path: Path, db_url: str) -> None:
    with engine(tmp_path, database_url=db_url) as eng:
        result = eng.run("""
            jobs:
              noisy:
                steps:
                  - run: seq 1 100000
            """, timeout=120)
        assert result.status == "SUCCEEDED"
        lines = eng.logs(result.build.id, "noisy")
        assert [line.number for line in lines] == list(range(1, 100_001))
        assert [line.text for line in lines] == [str(n) for n in range(1, 100_001)]
        tail = eng.logs(result.build.id, "noisy", from_line=99_990)
        assert [line.text for line in tail] == [str(n) for n in range(99_990, 100_001)]


def test_follow_streams_lines_while_the_job_runs(tmp_path: Path, db_url: str) -> None:
    with engine(tmp_path, database_url=db_url) as eng:
        build = eng.start("""
            jobs:
              slow:
                steps:
                  - run: for i in 1 2 3; do echo line $i; sleep 0.2; done
            """)
        lines = eng.logs(build.id, follow=True)
        assert [line.text for line in lines] == ["line 1", "line 2", "line 3"]
        assert {line.job_key for line in lines} == {"slow"}
