"""Public API of the synthetic two-domain world: splits, the oracle teacher, the corpus, the tokenizer.

Every example is generated from a seed derived with SHA-256 from (seed, task, domain, split, index),
never from Python's salted `hash()`, so the data are byte-identical on every machine and the first
`n` examples of a split do not depend on how many are requested. Train, dev and test use different
derived seeds, so they are independent draws (`tests/test_synthetic_world.py` checks that they share
no document).

An example is a JSON-serialisable dict::

    {"id", "task", "domain", "split",
     "prompt",      # the full model prompt; the response is its completion after one space
     "reference",   # the dataset's own (imperfect) response
     "record",      # the latent record: enough for `gold_reward` and for `oracle_write`
     "document"}    # the rendered document (summarisation) or context (QA)
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from prefshift.data.synthetic.seeding import derive_seed
from prefshift.data.synthetic.tasks import SPLITS, TASKS, WRITERS, domains, sample_record
from prefshift.data.synthetic.tokenizer import train_tokenizer

__all__ = [
    "DEFAULT_ORACLE_QUALITY",
    "SPLITS",
    "TASKS",
    "corpus",
    "derive_seed",
    "generate_split",
    "make_example",
    "oracle_write",
    "train_tokenizer",
]

DEFAULT_ORACLE_QUALITY = 0.8
_CORPUS_SPLIT = "unlabelled"  # its own derived seeds, so the corpus shares no draw with train/dev/test


def make_example(task: str, domain: str, split: str, index: int, seed: int = 0) -> dict[str, Any]:
    """Example number `index` of a split (any split name; `generate_split` restricts to SPLITS)."""
    rng = random.Random(derive_seed(seed, task, domain, split, index))
    record = sample_record(task, domain, rng)
    writer = WRITERS[task]
    document = writer.render_document(record, rng)
    return {
        "id": f"{task}/{domain}/{split}/s{seed}/{index}",
        "task": task,
        "domain": domain,
        "split": split,
        "prompt": writer.build_prompt(record, document),
        "reference": writer.write_reference(record, rng),
        "record": record,
        "document": document,
    }


def generate_split(task: str, domain: str, split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """The first `n` examples of a task/domain split (split in train/dev/test)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
    return [make_example(task, domain, split, i, seed) for i in range(n)]


def oracle_write(
    record: dict[str, Any],
    domain: str,
    quality: float = DEFAULT_ORACLE_QUALITY,
    rng: random.Random | None = None,
) -> str:
    """A teacher's response for `record`, written in `domain`'s style from the latent facts.

    `quality` in [0, 1] sets the probability of stating each key fact (1 - 0.7 (1 - q)), the
    probability that a stated fact is wrong (0.4 (1 - q)^2, half of them a distractor from the
    document) and the padding (uniform up to 12 (1 - q) filler phrases for summaries, 6 (1 - q) for
    answers). At 0.8 it beats the target references on gold most of the time; at 0.2 it loses to them
    most of the time.
    Without `rng` the output is a deterministic function of the record, domain and quality.
    """
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality must be in [0, 1], got {quality}")
    if rng is None:
        rng = random.Random(derive_seed(json.dumps(record, sort_keys=True), domain, quality))
    return WRITERS[record["task"]].write_oracle(record, domain, quality, rng)


def corpus(seed: int, n_per_domain: int) -> Iterator[str]:
    """Unlabelled text of every domain of every task: each example's prompt, then its reference.

    Interleaved across domains (example i of every domain before example i + 1), drawn from seeds
    disjoint from train/dev/test; for tokenizer training and LM pretraining.
    """
    for index in range(n_per_domain):
        for task in TASKS:
            for domain in domains(task):
                example = make_example(task, domain, _CORPUS_SPLIT, index, seed)
                yield example["prompt"]
                yield example["reference"]
