"""The gold reward: a deterministic score of a response against the latent record it answers.

It never looks at a model; it is the ground truth that win rates, annotator labels and pseudo-label
quality are measured against. The response is lower-cased and split on whitespace into words; the
lexicon values it mentions are found by greedy longest match on their cores
(`lexicon.find_mentions`). Then, with ``K`` the record's key facts:

- **facts**: + w_s for every key slot s whose value is mentioned (each counted once).
  Summarisation: w_s = 1/7 for each of who, action, object, place, time, reason, outcome.
  QA: w_answer = 0.6, w_reason = 0.4. A perfect response scores 1.0 before penalties.
- **wrong facts**: − 0.2 per distinct mentioned value that is neither a key nor a context value of
  the record (a distractor from the document, a value of another domain or task: each contradicts
  the record). Mentioning the context (the QA problem) is neutral.
- **hallucinated facts**: a further − 0.1 per distinct wrong value that the document does not mention
  either (not among the record's key, context or distractor values).
- **repetition**: − 0.05 per repeated word trigram (sum over trigrams of count − 1).
- **length**: − 0.02 per word beyond what the facts need, need = Σ_{s∈K} words(value_s) + allowance,
  allowance = 6 words for connectives and punctuation (both tasks).
- **off topic**: − 0.5 when no key fact is stated (refusals, other events, pure filler).
- **empty**: a response with no words scores exactly −0.5 (`EMPTY_SCORE`).

Calibration (checked in tests): perfect concise responses score 1.0, above every domain's references
(which omit facts or pad); a wrong fact costs more than omitting it; 15 padding words cost 0.3, which a
length-biased annotator with bias ≥ 0.02 per word can outweigh.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from prefshift.data.synthetic.lexicon import SUMMARY_SLOTS, find_mentions
from prefshift.data.synthetic.records import grounded_values

FACT_WEIGHTS: dict[str, dict[str, float]] = {
    "summarisation": {slot: 1.0 / len(SUMMARY_SLOTS) for slot in SUMMARY_SLOTS},
    "qa": {"answer": 0.6, "reason": 0.4},
}
LENGTH_ALLOWANCE = {"summarisation": 6, "qa": 6}
WRONG_PENALTY = 0.2
HALLUCINATION_PENALTY = 0.1
REPETITION_PENALTY = 0.05
LENGTH_PENALTY = 0.02
OFF_TOPIC_PENALTY = 0.5
EMPTY_SCORE = -0.5


@dataclass(frozen=True)
class GoldBreakdown:
    """The components of one gold score, for analysis and tests (`total` is the reward)."""

    total: float
    facts: float
    stated: tuple[str, ...]
    wrong: tuple[str, ...]
    hallucinated: tuple[str, ...]
    repeated_trigrams: int
    excess_words: int
    off_topic: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view."""
        return asdict(self)


def needed_words(record: dict[str, Any]) -> int:
    """Words a complete, concise response needs: the key values plus the task's allowance."""
    return sum(len(v.split()) for v in record["key"].values()) + LENGTH_ALLOWANCE[record["task"]]


def _repeated_trigrams(words: list[str]) -> int:
    counts = Counter(zip(words, words[1:], words[2:], strict=False))
    return sum(c - 1 for c in counts.values())


def gold_breakdown(record: dict[str, Any], response: str) -> GoldBreakdown:
    """Score `response` against `record` and return every component (rule in the module docstring)."""
    words = response.lower().split()
    if not words:
        return GoldBreakdown(EMPTY_SCORE, 0.0, (), (), (), 0, 0, True)
    weights = FACT_WEIGHTS[record["task"]]
    slot_of_key = {value: slot for slot, value in record["key"].items()}
    context = set(record["context"].values())
    grounded = grounded_values(record)
    stated: list[str] = []
    wrong: list[str] = []
    for entry in find_mentions(response):
        slot = slot_of_key.get(entry.phrase)
        if slot is not None:
            if slot not in stated:
                stated.append(slot)
        elif entry.phrase not in context and entry.phrase not in wrong:
            wrong.append(entry.phrase)
    hallucinated = [v for v in wrong if v not in grounded]
    facts = sum(weights[s] for s in stated)
    repeated = _repeated_trigrams(words)
    excess = max(0, len(words) - needed_words(record))
    off_topic = not stated
    total = (
        facts
        - WRONG_PENALTY * len(wrong)
        - HALLUCINATION_PENALTY * len(hallucinated)
        - REPETITION_PENALTY * repeated
        - LENGTH_PENALTY * excess
        - (OFF_TOPIC_PENALTY if off_topic else 0.0)
    )
    return GoldBreakdown(
        total=round(total, 6),
        facts=round(facts, 6),
        stated=tuple(stated),
        wrong=tuple(wrong),
        hallucinated=tuple(hallucinated),
        repeated_trigrams=repeated,
        excess_words=excess,
        off_topic=off_topic,
    )


def gold_reward(record: dict[str, Any], response: str) -> float:
    """The gold reward of `response` for `record` (either task; dispatch on `record["task"]`)."""
    return gold_breakdown(record, response).total
