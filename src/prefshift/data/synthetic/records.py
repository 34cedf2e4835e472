"""Latent records: the facts behind one example, before any surface form is chosen.

A record is a JSON-serialisable dict::

    {"task": "summarisation" | "qa", "domain": str,
     "key": {slot: phrase},          # the facts a good response states (scored by `gold`)
     "context": {slot: phrase},      # facts a response may repeat without gain or penalty
     "distractors": [{"role": str, "slot": str, "value": phrase}, ...],
     "surface": {name: text}}       # filled by the renderer: the QA question, a news quote

Distractors are lexicon values the document also mentions (a side event, a quoted speaker, advice
for another problem); stating one in a response is a *wrong* fact. Separating the record from its
rendering is what lets one record be written as a forum post or a news article, scored by the same
gold function, and rewritten by an oracle that knows the truth. `surface` keeps the few rendered
choices a reference may quote; it adds no lexicon value beyond the record's own and the gold reward
ignores it.
"""

from __future__ import annotations

import random
from typing import Any

from prefshift.data.synthetic.lexicon import QA_DOMAIN_MIXES, SUMMARY_SLOTS, domain_values, mix_values

# The side event of a summarisation document: a second who/action/object/place/time, plus a person
# who is quoted or mentioned. Each has the slot type of the key fact it could be confused with.
_SUMMARY_DISTRACTOR_ROLES: tuple[tuple[str, str], ...] = (
    ("who", "who"),
    ("action", "action"),
    ("object", "object"),
    ("place", "place"),
    ("time", "time"),
    ("speaker", "who"),
)


def _pick(rng: random.Random, values: tuple[str, ...], taken: set[str]) -> str:
    """A value not already used in this record, so key facts and distractors never coincide."""
    value = rng.choice([v for v in values if v not in taken])
    taken.add(value)
    return value


def sample_summary_record(domain: str, rng: random.Random) -> dict[str, Any]:
    """A latent event for the summarisation task, with values drawn from `domain`'s lexicon."""
    taken: set[str] = set()
    key = {slot: _pick(rng, domain_values("summarisation", domain, slot), taken) for slot in SUMMARY_SLOTS}
    distractors = [
        {"role": role, "slot": slot, "value": _pick(rng, domain_values("summarisation", domain, slot), taken)}
        for role, slot in _SUMMARY_DISTRACTOR_ROLES
    ]
    return {
        "task": "summarisation",
        "domain": domain,
        "key": key,
        "context": {},
        "distractors": distractors,
        "surface": {},
    }


def sample_qa_record(domain: str, rng: random.Random) -> dict[str, Any]:
    """A latent question: the problem asked about, its answer and reason, and 1-2 distractor tips.

    All values come from one topic mix of the domain (`QA_DOMAIN_MIXES`). Within it, problem, answer
    and reason are paired at random, so an answer can only be found by reading the context, never
    recalled from a pairing seen in training.
    """
    mix = rng.choice(QA_DOMAIN_MIXES[domain])
    taken: set[str] = set()
    problem = _pick(rng, mix_values(mix, "problem"), taken)
    key = {slot: _pick(rng, mix_values(mix, slot), taken) for slot in ("answer", "reason")}
    distractors = [
        {"role": f"{slot}_{k}", "slot": slot, "value": _pick(rng, mix_values(mix, slot), taken)}
        for k in range(1, rng.randint(1, 2) + 1)
        for slot in ("problem", "answer", "reason")
    ]
    return {
        "task": "qa",
        "domain": domain,
        "key": key,
        "context": {"problem": problem},
        "distractors": distractors,
        "surface": {},
    }


def distractor(record: dict[str, Any], role: str) -> str:
    """The value of the distractor with the given role."""
    return next(d["value"] for d in record["distractors"] if d["role"] == role)


def grounded_values(record: dict[str, Any]) -> set[str]:
    """Every lexicon value the record's document mentions: key, context and distractor values."""
    return (
        set(record["key"].values())
        | set(record["context"].values())
        | {d["value"] for d in record["distractors"]}
    )


def contradicting_value(record: dict[str, Any], slot: str, domain: str, rng: random.Random) -> str:
    """A value of `slot` that contradicts the record, for writers that make mistakes.

    Half the time (when the document has one) a same-slot distractor, the typical confusion of a
    reader; otherwise a value of `domain`'s lexicon that the document never mentions (a hallucination).
    """
    confusable = [d["value"] for d in record["distractors"] if d["slot"] == slot]
    if confusable and rng.random() < 0.5:
        return rng.choice(confusable)
    return unmentioned_value(record, slot, domain, rng)


def unmentioned_value(record: dict[str, Any], slot: str, domain: str, rng: random.Random) -> str:
    """A value of `slot` from `domain`'s lexicon that the record's document never mentions."""
    grounded = grounded_values(record)
    return rng.choice([v for v in domain_values(record["task"], domain, slot) if v not in grounded])
