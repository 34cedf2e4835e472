"""keep_freed_memory: large tensors stop page-faulting on every allocation."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Runs 20 steps of a small MLP forward (activations of 1-4 MiB) and prints the minor page faults.
_PROBE = """
import resource, sys, torch
if sys.argv[1] == "tuned":
    from prefshift.allocator import keep_freed_memory
    assert keep_freed_memory()
def step():
    h = torch.ones(1024, 256) @ torch.ones(256, 1024)
    return ((torch.nn.functional.silu(h) * h) @ torch.ones(1024, 256)).sum()
step()  # the first touch of the heap is not counted
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    ).stdout
    return int(out.strip().splitlines()[-1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_freed_tensor_memory_is_reused_without_page_faults() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    # glibc maps each 4 MiB activation afresh and faults its 1024 pages in, step after step
    assert default > 20 * 1000
    assert tuned < default / 4


def test_is_idempotent() -> None:
    from prefshift.allocator import keep_freed_memory

    first = keep_freed_memory()
    assert keep_freed_memory() == first
