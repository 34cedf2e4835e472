"""Seeded corruptions of a reference: the cheap "bad responses" of preference data.

Each corruption damages the reference in one way the gold reward penalises, so corrupted references
give pairs with a known direction (and, through the annotators, a known amount of label noise):

- `drop_fact`: delete one stated key fact;
- `swap_fact`: replace one stated key fact with another value of the same slot that the document does
  not mention (a wrong and hallucinated fact);
- `insert_hallucination`: add a lexicon value of a key slot that the document does not mention;
- `repeat`: repeat a span of the reference;
- `pad`: append the domain's filler phrases;
- `truncate`: keep only the first 30-60% of the words (at least one word fewer);
- `off_topic`: replace the reference with the reference of an unrelated record.

A corruption that cannot apply (no stated fact to drop or swap) falls back to `truncate` or
`insert_hallucination`, so every call returns a changed response (possibly empty when a one-word
reference is truncated; `annotators.candidate_pool` drops empty candidates).
"""

from __future__ import annotations

import math
import random
from typing import Any

from prefshift.data.synthetic.lexicon import core_of, mention_spans
from prefshift.data.synthetic.records import unmentioned_value
from prefshift.data.synthetic.tasks import WRITERS, sample_record
from prefshift.data.synthetic.text import pad

CORRUPTIONS: tuple[str, ...] = (
    "drop_fact",
    "swap_fact",
    "insert_hallucination",
    "repeat",
    "pad",
    "truncate",
    "off_topic",
)


def _key_spans(record: dict[str, Any], words: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, slot) of the key facts the words state, spans widened to the full phrase."""
    slot_of_key = {value: slot for slot, value in record["key"].items()}
    spans = []
    for start, end, entry in mention_spans(words):
        slot = slot_of_key.get(entry.phrase)
        if slot is None:
            continue
        lead = len(entry.phrase.split()) - len(entry.core)  # words stripped from the core, e.g. "at the"
        if lead and words[max(0, start - lead) : start] == entry.phrase.split()[:lead]:
            start -= lead
        spans.append((start, end, slot))
    return spans


def corrupt(record: dict[str, Any], reference: str, kind: str, rng: random.Random) -> str:
    """Return `reference` damaged by corruption `kind` (one of `CORRUPTIONS`), drawing from `rng`."""
    words = reference.split()
    if kind in ("drop_fact", "swap_fact"):
        spans = _key_spans(record, words)
        if not spans:
            return corrupt(
                record, reference, "truncate" if kind == "drop_fact" else "insert_hallucination", rng
            )
        start, end, slot = rng.choice(spans)
        if kind == "drop_fact":
            return " ".join(words[:start] + words[end:])
        # Keep the span's leading function words ("at the"), replace the core ("harbour").
        core_start = end - len(core_of(record["key"][slot]))
        new_core = list(core_of(unmentioned_value(record, slot, record["domain"], rng)))
        return " ".join(words[:core_start] + new_core + words[end:])
    if kind == "insert_hallucination":
        slot = rng.choice(sorted(record["key"]))
        return pad(reference, [unmentioned_value(record, slot, record["domain"], rng)])
    if kind == "repeat":
        start = rng.randrange(0, max(1, len(words) - 3))
        end = rng.randint(min(len(words), start + 4), len(words))
        return " ".join(words[:end] + words[start:end] + words[end:])
    if kind == "pad":
        phrases = WRITERS[record["task"]].PADDING[record["domain"]]
        return pad(reference, [rng.choice(phrases) for _ in range(rng.randint(3, 6))])
    if kind == "truncate":
        keep = min(len(words) - 1, math.ceil(len(words) * rng.uniform(0.3, 0.6)))
        return " ".join(words[:keep])
    if kind == "off_topic":
        writer = WRITERS[record["task"]]
        other = sample_record(record["task"], record["domain"], rng)
        writer.render_document(other, rng)  # fills the surface choices its reference may quote
        return writer.write_reference(other, rng)
    raise ValueError(f"unknown corruption {kind!r}; known: {CORRUPTIONS}")


def random_corruption(
    record: dict[str, Any], reference: str, rng: random.Random, kinds: tuple[str, ...] = CORRUPTIONS
) -> tuple[str, str]:
    """A corruption kind drawn uniformly from `kinds`, and the corrupted reference."""
    kind = rng.choice(kinds)
    return kind, corrupt(record, reference, kind, rng)
