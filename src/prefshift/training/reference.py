"""Reference log-probs, computed once per (reference model, tokenised data, precision) and cached on disk.

A grid of objectives and hyperparameters over the same data shares one reference; recomputing its
log-probs for every cell is the largest avoidable cost of a preference study. The cache key hashes the
reference weights and the token ids themselves (not file names or dataset fingerprints, which change
when nothing that matters changed), so a hit is always safe. Writes are atomic.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import datasets
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from prefshift.stages import log_event
from prefshift.training.logprobs import sequence_logps
from prefshift.training.packing import pack

log = logging.getLogger(__name__)


def model_fingerprint(model: nn.Module) -> str:
    """Hash of every parameter and buffer (names, dtypes, shapes, values) plus the model class."""
    h = hashlib.blake2b(digest_size=16)
    h.update(type(model).__name__.encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_fingerprint(ds: datasets.Dataset) -> str:
    """Hash of the token ids (the only thing reference log-probs depend on besides the model)."""
    h = hashlib.blake2b(digest_size=16)
    for batch in ds.select_columns(["prompt_ids", "completion_ids"]).iter(batch_size=1024):
        h.update(json.dumps([batch["prompt_ids"], batch["completion_ids"]]).encode())
    return h.hexdigest()


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write to a temporary file in the same folder, then rename: a killed run leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _batches(ds: datasets.Dataset, batch_size: int) -> Iterator[tuple[int, list, list]]:
    # Sorting by length cuts padding; results are scattered back to the original order.
    order = np.argsort(np.asarray(ds["length"]), kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size].tolist()
        rows = ds.select(idx)
        yield idx, rows["prompt_ids"], rows["completion_ids"]


@torch.no_grad()
def compute_logps(
    model: nn.Module,
    ds: datasets.Dataset,
    pad_token_id: int,
    batch_size: int = 64,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    desc: str = "reference log-probs",
) -> np.ndarray:
    """Summed log-probs [N, K] of every completion of a tokenised dataset under ``model``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = np.zeros((len(ds), len(ds[0]["completion_ids"])), dtype=np.float32)
    with tqdm(total=len(ds), desc=desc, leave=False) as bar:
        for idx, prompts, comps in _batches(ds, batch_size):
            batch = pack(prompts, comps, pad_token_id).to(device)
            with autocast():
                lp = sequence_logps(model, batch).logps
            out[idx] = lp.float().cpu().numpy()
            bar.update(len(idx))
    model.train(was_training)
    return out


def cached_reference_logps(
    model: nn.Module,
    ds: datasets.Dataset,
    pad_token_id: int,
    cache_dir: str | Path,
    precision: str,
    batch_size: int = 64,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> np.ndarray:
    """Reference log-probs [N, K], from the disk cache when this model, data and precision were seen."""
    cache_dir = Path(cache_dir)
    key = hashlib.blake2b(
        f"{model_fingerprint(model)}|{data_fingerprint(ds)}|{precision}".encode(), digest_size=16
    ).hexdigest()
    path = cache_dir / "reference-logps" / f"{key}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # grid cells trained in parallel (Ray workers) share one SFT model and pair set: the lock makes the
    # first worker compute the reference and the others wait for it and read it
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        hit = path.exists()
        if hit:
            logps = np.load(path)
            log.info("reference log-probs: cache hit %s", key)
        else:
            logps = compute_logps(model, ds, pad_token_id, batch_size, autocast)
            atomic_save_npy(path, logps)
            log.info("reference log-probs: computed %s (%d rows)", key, len(ds))
    log_event(cache_dir, "reference-logps", key, "hit" if hit else "miss", time.perf_counter() - t0)
    return logps
