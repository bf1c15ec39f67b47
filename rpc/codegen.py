"""Regenerate ``conveyor/v1`` from ``proto/conveyor/v1/*.proto`` (``make proto``).

The generated modules are committed; ``tests/rpc/test_codegen.py`` regenerates into a
temporary directory and fails when the committed files are stale.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
PACKAGE_DIR = Path("conveyor") / "v1"

_PACKAGE_DOC = '"""Generated code: {what}. Do not edit; run `make proto`."""\n'
INIT_FILES: dict[Path, str] = {
    Path("conveyor") / "__init__.py": _PACKAGE_DOC.format(
        what="protobuf/gRPC modules compiled from proto/ by rpc.codegen"
    ),
    PACKAGE_DIR / "__init__.py": _PACKAGE_DOC.format(
        what="the conveyor.v1 protobuf messages and gRPC stubs"
    ),
}


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    """The ``.proto`` sources, relative to ``proto_root``, in a stable order."""
    return sorted(p.relative_to(proto_root) for p in (proto_root / PACKAGE_DIR).glob("*.proto"))


def _mypy_grpc_plugin() -> str:
    beside = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    found = str(beside) if beside.exists() else shutil.which("protoc-gen-mypy_grpc")
    if not found:
        raise RuntimeError("protoc-gen-mypy_grpc not found: install the dev extras (mypy-protobuf)")
    return found


def generate(out_dir: Path, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Compile every proto into ``out_dir`` (``out_dir/conveyor/v1/...``).

    Returns the generated paths relative to ``out_dir``. Raises ``RuntimeError`` with
    protoc's exit code when compilation fails (protoc printed the reason on stderr).
    """
    sources = proto_files(proto_root)
    if not sources:
        raise RuntimeError(f"no .proto files under {proto_root / PACKAGE_DIR}")
    # grpc_tools ships google/protobuf/*.proto (timestamp, ...) next to its module.
    bundled = resources.files("grpc_tools") / "_proto"
    # mypy-protobuf types the gRPC stubs/servicers (protoc's --pyi_out covers messages only).
    plugin = _mypy_grpc_plugin()
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{bundled}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--mypy_grpc_out={out_dir}",
        *(str(s) for s in sources),
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code} for {[str(s) for s in sources]}")
    for rel, text in INIT_FILES.items():
        (out_dir / rel).write_text(text, encoding="utf-8")
    return sorted(p.relative_to(out_dir) for p in (out_dir / PACKAGE_DIR).glob("*.py*"))


def main() -> int:
    """Regenerate the committed code in place."""
    package = REPO_ROOT / PACKAGE_DIR
    for old in package.glob("*_pb2*.py*"):
        old.unlink()  # a deleted .proto must not leave its modules behind
    generated = generate(REPO_ROOT)
    for path in generated:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
