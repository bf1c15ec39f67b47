"""The committed conveyor/v1 modules must match what the protos generate now."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from rpc import codegen


def test_committed_generated_code_is_up_to_date(tmp_path: Path) -> None:
    fresh = codegen.generate(tmp_path)
    committed_dir = codegen.REPO_ROOT / codegen.PACKAGE_DIR
    committed = sorted(
        p.relative_to(codegen.REPO_ROOT) for p in committed_dir.glob("*.py*") if p.is_file()
    )
    assert committed == fresh, "generated file set differs: run `make proto`"
    stale = [
        str(rel)
        for rel in [*fresh, *codegen.INIT_FILES]
        if not filecmp.cmp(tmp_path / rel, codegen.REPO_ROOT / rel, shallow=False)
    ]
    assert not stale, f"stale generated code (run `make proto`): {stale}"


def test_generate_reports_protoc_failure(tmp_path: Path) -> None:
    proto_root = tmp_path / "proto"
    (proto_root / codegen.PACKAGE_DIR).mkdir(parents=True)
    (proto_root / codegen.PACKAGE_DIR / "broken.proto").write_text(
        'syntax = "proto3";\nmessage {\n', encoding="utf-8"
    )
    out = tmp_path / "out"
    (out / codegen.PACKAGE_DIR).mkdir(parents=True)
    with pytest.raises(RuntimeError, match="protoc failed"):
        codegen.generate(out, proto_root)
