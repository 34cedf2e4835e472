"""The task families, their domains, and the writer module behind each task.

One place maps a task name to the code that renders and writes it, so the public API (`world`) and
the corruptions share a single dispatch.
"""

from __future__ import annotations

import random
from types import MappingProxyType
from typing import Any, Protocol

from prefshift.data.synthetic import qa, summarisation
from prefshift.data.synthetic.records import sample_qa_record, sample_summary_record

TASKS: dict[str, dict[str, Any]] = {
    "summarisation": {"source": "forum", "targets": ["news", "email"]},
    "qa": {"source": "everyday", "targets": ["clinic", "tech"]},
}
SPLITS: tuple[str, ...] = ("train", "dev", "test")


class TaskWriter(Protocol):
    """What a task module (`summarisation`, `qa`) provides."""

    PADDING: dict[str, list[str]]

    def render_document(self, record: dict[str, Any], rng: random.Random) -> str: ...

    def build_prompt(self, record: dict[str, Any], document: str) -> str: ...

    def write_reference(self, record: dict[str, Any], rng: random.Random) -> str: ...

    def write_oracle(
        self, record: dict[str, Any], domain: str, quality: float, rng: random.Random
    ) -> str: ...


WRITERS: MappingProxyType[str, TaskWriter] = MappingProxyType({"summarisation": summarisation, "qa": qa})


def domains(task: str) -> list[str]:
    """The source domain of a task followed by its targets."""
    return [TASKS[task]["source"], *TASKS[task]["targets"]]


def sample_record(task: str, domain: str, rng: random.Random) -> dict[str, Any]:
    """A fresh latent record of `task` in `domain`, checking that the pair exists."""
    if task not in TASKS or domain not in domains(task):
        raise ValueError(f"unknown task/domain {task!r}/{domain!r}; known: {TASKS}")
    return sample_summary_record(domain, rng) if task == "summarisation" else sample_qa_record(domain, rng)
