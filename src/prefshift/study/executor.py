"""Run independent study tasks (grid cells) one after another, or in parallel on a Ray cluster.

Why: the cells of a study grid (objective × hyperparameters × seed × strategy) are independent once
their shared stages (SFT models, pair sets) exist, and on a GPU node each cell is one GPU-hour-scale
job. ``LocalExecutor`` (the default) runs them in order in this process; ``RayExecutor`` runs them as
Ray tasks — one CPU or one GPU each, on a local cluster or an existing one — and returns results in
the tasks' order, so a study's table does not depend on which executor made it.

Tasks share the content-addressed stage cache (``prefshift.stages``): a cell writes its stage into
the common cache directory. ``run_stage`` already makes *different* stages safe in parallel (each
writes a hidden temporary sibling and renames it into place; the cache log is appended one short line
per write). Two workers on the *same* stage would share that temporary directory — the second deletes
the first's half-written files — so ``locked_run_stage`` serialises each stage with an exclusive
``flock`` on ``.<name>.lock``: the loser waits, then finds the finished stage and logs a hit.
(``flock`` is local-filesystem safe; on a multi-node cluster the cache directory must be on a
filesystem with working locks, e.g. NFSv4 or Lustre with ``flock`` enabled.)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prefshift.allocator import keep_freed_memory
from prefshift.stages import run_stage

THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
"""Worker environment: one BLAS/OpenMP thread per task, so N tasks on N cores do not oversubscribe."""


@dataclass(frozen=True)
class Task:
    """``fn(*args, **kwargs)`` under a name that errors and logs refer to (e.g. the grid cell's id)."""

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class TaskError(RuntimeError):
    """A task failed; the message names the task, ``__cause__`` is the task's own exception."""

    def __init__(self, name: str, cause: BaseException) -> None:
        super().__init__(f"task {name!r} failed: {type(cause).__name__}: {cause}")
        self.task_name = name


class Executor(Protocol):
    def map(self, tasks: Sequence[Task]) -> list[Any]:
        """Run every task; results in the order of ``tasks``; a failure raises ``TaskError`` (the first
        failed task in that order)."""
        ...


def locked_run_stage(root: Path, name: str, fn: Callable[[Path], None], key: str = "") -> Path:
    """``stages.run_stage`` under an exclusive per-stage file lock (see the module doc)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return run_stage(root, name, fn, key)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class LocalExecutor:
    """Runs tasks in order in this process: the default, and the reference the Ray executor must match."""

    def map(self, tasks: Sequence[Task]) -> list[Any]:
        results = []
        for task in tasks:
            try:
                results.append(task.fn(*task.args, **task.kwargs))
            except Exception as exc:
                raise TaskError(task.name, exc) from exc
        return results


def _call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], env: Mapping[str, str]
) -> Any:
    """Run one task in a worker with ``env`` applied. The variables are set here, not only in Ray's
    ``runtime_env``, because a minimal ``ray`` install (without ``ray[default]``) ignores
    ``runtime_env.env_vars``; the torch thread pool is sized explicitly for the same reason (its OpenMP
    pool may already exist when the variable is set)."""
    os.environ.update(env)
    keep_freed_memory()
    if "OMP_NUM_THREADS" in env:
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    return fn(*args, **kwargs)


class RayExecutor:
    """Runs tasks as Ray tasks, one CPU (or one GPU) each.

    Connects to ``address`` (``"auto"`` for the cluster this node belongs to, or ``ray://host:10001``),
    or starts a local cluster with ``num_cpus`` (and ``num_gpus``) when ``address`` is None. A cluster
    already initialised in this process is used as is. ``gpus_per_task=None`` gives each task one GPU
    when the cluster has GPUs and none otherwise. ``env_vars`` extend ``THREAD_ENV`` in the workers'
    runtime environment (e.g. ``PYTHONPATH`` for code the workers must import, ``HF_HOME``).

    Example:
        >>> with RayExecutor(num_cpus=2) as ex:
        ...     metrics = ex.map([Task(cell.id, locked_run_stage, (cache, cell.id, cell.fit)) for cell in cells])
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        cpus_per_task: float = 1,
        gpus_per_task: float | None = None,
        env_vars: Mapping[str, str] | None = None,
    ) -> None:
        import ray  # optional dependency: `pip install prefshift[ray]`

        self._ray = ray
        self._owns_cluster = not ray.is_initialized()
        if self._owns_cluster:
            ray.init(
                address=address,
                num_cpus=num_cpus if address is None else None,
                num_gpus=num_gpus if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
            )
        if gpus_per_task is None:
            gpus_per_task = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        self._remote = ray.remote(_call)
        self._options = dict(
            num_cpus=cpus_per_task,
            num_gpus=gpus_per_task,
            max_retries=0,  # a failed training cell is a bug to report, not a flake to repeat
            runtime_env={"env_vars": {**THREAD_ENV, **(env_vars or {})}},
        )
        self._env = {**THREAD_ENV, **(env_vars or {})}

    def map(self, tasks: Sequence[Task]) -> list[Any]:
        refs = [
            self._remote.options(name=t.name, **self._options).remote(t.fn, t.args, dict(t.kwargs), self._env)
            for t in tasks
        ]
        results = []
        for task, ref in zip(tasks, refs, strict=True):
            try:
                results.append(self._ray.get(ref))
            except self._ray.exceptions.RayTaskError as exc:
                for pending in refs:
                    self._ray.cancel(pending)
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                raise TaskError(task.name, cause) from cause
        return results

    def shutdown(self) -> None:
        """Stop the local cluster this executor started (a cluster it joined is left running)."""
        if self._owns_cluster and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
