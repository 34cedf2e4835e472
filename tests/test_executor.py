"""Executors: a grid of tiny training cells on a local Ray cluster (2 CPU workers) gives the local table."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import torch
from conftest import make_model, make_pairs, make_tokenizer

from prefshift.stages import read_events
from prefshift.study.executor import LocalExecutor, Task, TaskError, locked_run_stage

ray = pytest.importorskip("ray")
from prefshift.study.executor import RayExecutor  # noqa: E402  (needs ray)

TESTS = str(Path(__file__).parent)


@pytest.fixture(scope="module")
def ray_executor():
    # the workers import this module (tasks are its functions) and conftest: put tests/ on their path
    with RayExecutor(num_cpus=2, env_vars={"PYTHONPATH": TESTS}) as ex:
        yield ex


def grid_cell(root: str, name: str, pairs: str, init: str, objective: str, beta: float) -> dict:
    """One grid cell: a preference training job as a cached stage; returns its row of the table."""
    from prefshift.training.run import train

    def fit(d: Path) -> None:
        train(
            "preference",
            pairs,
            init,
            d,
            objective=objective,
            objective_params={"beta": beta},
            learning_rate=1e-3,
            epochs=2,
            batch_size=8,
            seed=0,
            precision="fp32",
        )

    out = locked_run_stage(Path(root), name, fit, key=f"{objective}-{beta}")
    metrics = json.loads((out / "metrics.json").read_text())
    weights = hashlib.sha256((out / "model" / "model.safetensors").read_bytes()).hexdigest()
    return {"cell": name, "train_loss": metrics["train_loss"], "weights": weights}


def grid(root: Path, pairs: Path, init: Path) -> list[Task]:
    cells = [(o, b) for o in ("dpo", "ipo") for b in (0.1, 0.5)]
    return [
        Task(f"{o}-b{b}", grid_cell, (str(root), f"{o}-b{b}", str(pairs), str(init), o, b)) for o, b in cells
    ]


def test_ray_grid_matches_local_grid(tmp_path, ray_executor) -> None:
    init = tmp_path / "init"
    make_model().save_pretrained(init)
    make_tokenizer().save_pretrained(init)
    pairs = tmp_path / "pairs.jsonl"
    make_pairs(16).to_json(str(pairs))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: the same thread count gives the same arithmetic
    try:
        local = LocalExecutor().map(grid(tmp_path / "local", pairs, init))
    finally:
        torch.set_num_threads(threads)
    remote = ray_executor.map(grid(tmp_path / "ray", pairs, init))
    assert [r["cell"] for r in remote] == ["dpo-b0.1", "dpo-b0.5", "ipo-b0.1", "ipo-b0.5"]
    assert remote == local  # same losses and bit-identical weights, in the same order
    assert len({r["weights"] for r in local}) == 4
    assert sorted(e["event"] for e in read_events(tmp_path / "ray")) == ["miss"] * 4
    # a second run of the grid is all cache hits
    assert ray_executor.map(grid(tmp_path / "ray", pairs, init)) == local
    assert [e["event"] for e in read_events(tmp_path / "ray")][4:] == ["hit"] * 4


def racing_writer(root: str, marks: str) -> tuple[str, float, float]:
    """Both racers try to build stage "shared"; the body is slow so that they overlap."""

    def fit(d: Path) -> None:
        with open(marks, "a") as f:
            f.write(f"{os.getpid()}\n")
        for i in range(40):
            (d / f"part{i}").write_text(str(os.getpid()))
            time.sleep(0.05)

    start = time.time()
    out = locked_run_stage(Path(root), "shared", fit)
    return "".join((out / f"part{i}").read_text() for i in range(40)), start, time.time()


def test_two_workers_racing_on_one_stage_build_it_once(tmp_path, ray_executor) -> None:
    marks = tmp_path / "marks.txt"
    tasks = [Task(f"racer{i}", racing_writer, (str(tmp_path / "cache"), str(marks))) for i in range(2)]
    (first, start1, end1), (second, start2, end2) = ray_executor.map(tasks)
    assert max(start1, start2) < min(end1, end2)  # the two really raced
    writers = marks.read_text().split()
    assert len(writers) == 1  # built once; the other worker waited and hit the cache
    assert first == second == writers[0] * 40  # every part from the one writer: nothing interleaved
    events = sorted(e["event"] for e in read_events(tmp_path / "cache"))
    assert events == ["hit", "miss"]
    assert not list((tmp_path / "cache").glob(".shared*.tmp"))


def slow_identity(x: int) -> int:
    time.sleep(0.3 * (3 - x))  # later tasks finish first
    return x


def failing(x: int) -> int:
    raise ValueError(f"bad cell {x}")


def test_order_and_errors_name_the_task(ray_executor) -> None:
    tasks = [Task(f"t{i}", slow_identity, (i,)) for i in range(3)]
    assert ray_executor.map(tasks) == [0, 1, 2] == LocalExecutor().map(tasks)
    bad = [Task("ok", slow_identity, (2,)), Task("objective=dpo/beta=0.1", failing, (7,))]
    for executor in (LocalExecutor(), ray_executor):
        with pytest.raises(TaskError, match=r"task 'objective=dpo/beta=0.1' failed: .*bad cell 7") as info:
            executor.map(bad)
        assert isinstance(info.value.__cause__, ValueError)


def worker_threads() -> tuple[str | None, int]:
    """Read in the worker itself (a bound ``os.environ.get`` would carry the driver's environment)."""
    return os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()


def test_workers_get_one_thread(ray_executor) -> None:
    assert ray_executor.map([Task("env", worker_threads)]) == [("1", 1)]
