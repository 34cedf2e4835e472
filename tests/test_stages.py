"""run_stage: atomic, skip-if-done, safe when workers race on one stage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefshift.stages import read_events, run_stage


def test_second_call_is_a_hit(tmp_path: Path) -> None:
    calls = []
    for _ in range(2):
        out = run_stage(tmp_path, "s", lambda d: (calls.append(1), (d / "x").write_text("1")))
    assert calls == [1] and (out / "x").read_text() == "1"
    assert [e["event"] for e in read_events(tmp_path)] == ["miss", "hit"]


def test_losing_a_race_keeps_the_winners_stage(tmp_path: Path) -> None:
    """Another worker renames its copy into place while this one computes: ours is discarded."""

    def slow(d: Path) -> None:
        (d / "who").write_text("loser")
        winner = tmp_path / "s"
        winner.mkdir()
        (winner / "who").write_text("winner")

    out = run_stage(tmp_path, "s", slow)
    assert (out / "who").read_text() == "winner"
    assert not list(tmp_path.glob(".s*.tmp"))
    assert [e["event"] for e in read_events(tmp_path)] == ["hit"]


def test_leftovers_of_dead_processes_are_removed_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".s.{int(dead.stdout)}.tmp"
    live = tmp_path / f".s.{os.getppid()}.tmp"  # a running process (our parent) owns this one
    for d in (stale, live):
        d.mkdir(parents=True)
    run_stage(tmp_path, "s", lambda d: (d / "x").write_text("1"))
    assert not stale.exists() and live.exists()
