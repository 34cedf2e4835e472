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
    """Run ``fn(tmp_dir)`` unless ``root/name`` already exists; return ``root/name``.

    The temporary directory is private to this process (``.NAME.PID.tmp``), so two workers that
    race on one stage (parallel grid cells sharing the cache) never delete each other's files: the
    first rename wins and the loser discards its copy and reports a hit. Leftovers of killed
    processes are removed before the stage starts.
    """
    final = root / name
    if final.exists():
        log_event(root, name, key, "hit")
        return final
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{name}.*.tmp"):
        if not _alive(stale.suffixes[-2].lstrip(".")):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".{name}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    fn(tmp)
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another worker finished the same stage first
        log_event(root, name, key, "hit")
        return final
    log_event(root, name, key, "miss", time.perf_counter() - t0)
    return final


def _alive(pid: str) -> bool:
    """Whether the process that owns a temporary stage directory is still running."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def read_events(root: Path) -> list[dict]:
    path = root / CACHE_LOG
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
