"""Generates the Python stubs of `protos/elm/v1/*.proto` (committed beside them), or checks they are current.

python -m protos.generate          # regenerate in place
python -m protos.generate --check  # exit 1 if the committed stubs differ from what the .proto files give
"""

from __future__ import annotations

import filecmp
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = Path("protos/elm/v1")
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted((ROOT / PROTO_DIR).glob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Writes the stubs under `out` (in the repository's layout); returns their paths relative to `out`."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    protos = [str(p.relative_to(ROOT)) for p in proto_files()]
    args = ["protoc", "-I.", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *protos]
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    finally:
        os.chdir(cwd)
    return [PROTO_DIR / f"{p.stem}{suffix}" for p in proto_files() for suffix in SUFFIXES]


def stale_stubs() -> list[str]:
    """The committed stubs that are missing or differ from freshly generated ones."""
    with tempfile.TemporaryDirectory() as tmp:
        stale = []
        for path in generate(Path(tmp)):
            committed = ROOT / path
            if not committed.is_file() or not filecmp.cmp(committed, Path(tmp) / path, shallow=False):
                stale.append(str(path))
        return stale


def main() -> None:
    if "--check" in sys.argv[1:]:
        stale = stale_stubs()
        if stale:
            sys.exit(f"stale gRPC stubs (run `python -m protos.generate`): {', '.join(stale)}")
        print("gRPC stubs are current")
    else:
        for path in generate(ROOT):
            print(path)


if __name__ == "__main__":
    main()
