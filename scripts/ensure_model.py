"""Train a model only when none matches the current inputs; print its path.

The model is named after a hash of everything that goes into it (config, domain,
training data, custom components and the knowledge they load, and the Rasa
version), so "missing or stale" is a file-existence check, not a timestamp guess.

    python scripts/ensure_model.py          # train if needed
    python scripts/ensure_model.py --path   # print the current model's path only
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
MODELS = PROJECT / "models"
INPUTS = ["config.yml", "domain", "data", "components", "knowledge"]
SUFFIXES = {".yml", ".yaml", ".py", ".txt", ".json"}
KEEP_MODELS = 3


def input_files() -> list[Path]:
    files: list[Path] = []
    for name in INPUTS:
        path = PROJECT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
            )
    return files


def model_hash() -> str:
    import rasa  # the Rasa version is an input too

    digest = hashlib.sha256(f"rasa=={rasa.__version__}\n".encode())
    for path in input_files():
        digest.update(str(path.relative_to(PROJECT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path() -> Path:
    return MODELS / f"model-{model_hash()}.tar.gz"


def prune(keep: Path) -> None:
    """Keep the newest few models so `models/` doesn't grow without bound."""
    old = sorted(MODELS.glob("model-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in [p for p in old if p != keep][KEEP_MODELS - 1:]:
        path.unlink()


def main() -> int:
    target = model_path()
    if "--path" in sys.argv:
        print(target)
        return 0 if target.exists() else 1
    if target.exists():
        print(f"==> Model is up to date: {target.relative_to(PROJECT)}")
        return 0
    print(f"==> Training a model for the current data, config and domain (about 3 to 4 minutes on 2 cores)")
    started = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "rasa"), "train",
            "--domain", "domain", "--config", "config.yml", "--data", "data",
            "--out", str(MODELS), "--fixed-model-name", target.name[: -len(".tar.gz")],
        ],
        cwd=PROJECT,
    )
    if result.returncode != 0 or not target.exists():
        print("ERROR: training failed; see the output above.", file=sys.stderr)
        return 1
    print(f"==> Trained {target.relative_to(PROJECT)} in {time.monotonic() - started:.0f} s")
    prune(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
