"""Atomic, skip-if-done stage directories: the unit of resumable work.

A stage writes into a hidden temporary sibling and renames it into place when it finishes, so a
directory that exists is complete by construction; a killed run leaves only a temporary folder, which
the next attempt deletes. Every run of a stage is logged (hit or computed) to ``cache-log.jsonl`` next
to the stages, so a resumed run can show — and tests can assert — that nothing finished was recomputed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

CACHE_LOG = "cache-log.jsonl"


def log_event(root: Path, stage: str, key: str, event: str, seconds: float = 0.0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / CACHE_LOG, "a") as f:
        f.write(json.dumps({"stage": stage, "key": key, "event": event, "seconds": round(seconds, 3)}) + "\n")


def run_stage(root: Path, name: str, fn: Callable[[Path], None], key: str = "") -> Path:
    """Run ``fn(tmp_dir)`` unless ``root/name`` already exists; return ``root/name``."""
    final = root / name
    if final.exists():
        log_event(root, name, key, "hit")
        return final
    tmp = root / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    fn(tmp)
    os.replace(tmp, final)
    log_event(root, name, key, "miss", time.perf_counter() - t0)
    return final


def read_events(root: Path) -> list[dict]:
    path = root / CACHE_LOG
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
