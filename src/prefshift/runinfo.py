"""Run directories that say how they were made: config, versions, seed, metrics — written atomically.

A result that cannot be traced to its config and library versions cannot be reproduced, and a file
half-written by a killed process is worse than no file; every JSON prefshift writes goes through here.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "prefshift",
    "torch",
    "transformers",
    "accelerate",
    "datasets",
    "peft",
    "tokenizers",
    "trl",
    "vllm",
    "ray",
)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; results are meant to be read and shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def versions() -> dict[str, str]:
    """Installed versions of the libraries a result depends on (absent ones omitted)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_manifest(run_dir: str | Path, config: dict[str, Any], seed: int) -> None:
    """Record config, seed and versions in ``run_dir/manifest.json``."""
    atomic_write_json(
        Path(run_dir) / "manifest.json", {"config": config, "seed": seed, "versions": versions()}
    )
