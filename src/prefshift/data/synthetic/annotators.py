"""Simulated annotators: Bradley-Terry preferences over the gold reward, with noise and length bias.

An annotator prefers response a over b with probability

    P(a > b) = σ((g(a) − g(b) + length_bias · (len(a) − len(b))) / temperature)

where g is the gold reward and len counts whitespace-separated words. `temperature` sets the label
noise (→ 0: always the gold winner, modulo the bias); `length_bias` (per word) makes the annotator
favour longer responses a little, like human raters, so objectives that exploit length can be told
apart from those that do not by comparing these labels with the gold reward.

Each comparison draws its uniform number from a seed derived from (annotator seed, pair key), so
labels are reproducible and two annotators that differ only in bias or temperature see the same
random numbers on the same pairs (their labels differ only where the probabilities do).

Candidates per prompt are supplied by the caller (model samples) and completed here with the
dataset reference and seeded corruptions of it; the shares are knobs. Rows carry the gold reward of
both sides (`chosen_gold`, `rejected_gold`) and where each came from, for later analysis.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prefshift.data.synthetic.corrupt import CORRUPTIONS, random_corruption
from prefshift.data.synthetic.gold import gold_reward
from prefshift.data.synthetic.seeding import derive_seed


def sigmoid(x: float) -> float:
    """The logistic function, stable for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dataclass(frozen=True)
class BradleyTerryAnnotator:
    """A noisy, length-biased preference labeller over the gold reward (formula in the module doc)."""

    temperature: float = 0.1
    length_bias: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    def probability(self, gold_a: float, gold_b: float, len_a: int, len_b: int) -> float:
        """P(a is preferred over b) given both gold rewards and word counts."""
        return sigmoid((gold_a - gold_b + self.length_bias * (len_a - len_b)) / self.temperature)

    def prefers_first(self, gold_a: float, gold_b: float, len_a: int, len_b: int, key: str) -> bool:
        """Draw one label for the pair identified by `key` (same key, same uniform number)."""
        u = random.Random(derive_seed(self.seed, key)).random()
        return u < self.probability(gold_a, gold_b, len_a, len_b)


def candidate_pool(
    example: dict[str, Any],
    model_samples: Sequence[str] = (),
    *,
    n_model: int | None = None,
    include_reference: bool = True,
    n_corrupted: int = 2,
    corruptions: Sequence[str] = CORRUPTIONS,
    seed: int = 0,
) -> list[dict[str, str]]:
    """The candidate responses of one prompt, as `{"text", "origin"}` dicts.

    Takes the first `n_model` of `model_samples` (all when None; origin "model"), the reference when
    `include_reference` (origin "reference") and `n_corrupted` corruptions of the reference drawn
    from `corruptions` (origin "corrupt:<kind>"). Empty texts are dropped, as the reference study drops
    empty teacher candidates; exact duplicates are dropped (first occurrence kept), since a pair of
    identical texts carries no preference.
    """
    pool = [{"text": t, "origin": "model"} for t in list(model_samples)[:n_model]]
    if include_reference:
        pool.append({"text": example["reference"], "origin": "reference"})
    rng = random.Random(derive_seed(seed, "corrupt", example["id"]))
    for _ in range(n_corrupted):
        kind, text = random_corruption(example["record"], example["reference"], rng, tuple(corruptions))
        pool.append({"text": text, "origin": f"corrupt:{kind}"})
    seen: set[str] = set()
    unique = []
    for candidate in pool:
        if candidate["text"].strip() and candidate["text"] not in seen:
            seen.add(candidate["text"])
            unique.append(candidate)
    return unique


def build_preference_pairs(
    examples: Sequence[dict[str, Any]],
    annotator: BradleyTerryAnnotator,
    model_samples: Mapping[str, Sequence[str]] | None = None,
    *,
    pairs_per_prompt: int = 1,
    n_model: int | None = None,
    include_reference: bool = True,
    n_corrupted: int = 2,
    corruptions: Sequence[str] = CORRUPTIONS,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Paired preference rows `{"prompt", "chosen", "rejected", ...}` labelled by `annotator`.

    For each example the candidate pool (`candidate_pool`; `model_samples` maps example id to the
    caller's samples) yields up to `pairs_per_prompt` distinct unordered pairs, drawn uniformly
    without replacement; the annotator decides which side is chosen. Extra columns: `id`, `domain`,
    `chosen_gold`, `rejected_gold`, `chosen_origin`, `rejected_origin`.
    """
    rows: list[dict[str, Any]] = []
    for example in examples:
        samples = (model_samples or {}).get(example["id"], ())
        pool = candidate_pool(
            example,
            samples,
            n_model=n_model,
            include_reference=include_reference,
            n_corrupted=n_corrupted,
            corruptions=corruptions,
            seed=seed,
        )
        golds = [gold_reward(example["record"], c["text"]) for c in pool]
        lengths = [len(c["text"].split()) for c in pool]
        rng = random.Random(derive_seed(seed, "pairs", example["id"]))
        combos = list(itertools.combinations(range(len(pool)), 2))
        for n, (i, j) in enumerate(rng.sample(combos, min(pairs_per_prompt, len(combos)))):
            a, b = (i, j) if rng.random() < 0.5 else (j, i)
            key = f"{example['id']}/{n}"
            if not annotator.prefers_first(golds[a], golds[b], lengths[a], lengths[b], key):
                a, b = b, a
            rows.append(
                {
                    "id": example["id"],
                    "domain": example["domain"],
                    "prompt": example["prompt"],
                    "chosen": pool[a]["text"],
                    "rejected": pool[b]["text"],
                    "chosen_gold": golds[a],
                    "rejected_gold": golds[b],
                    "chosen_origin": pool[a]["origin"],
                    "rejected_origin": pool[b]["origin"],
                }
            )
    return rows


def unpair(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unpaired (KTO) rows from paired ones: chosen -> label True, rejected -> label False.

    Rows are `{"prompt", "completion", "label", "gold", "origin", "id", "domain"}`; this is how paired
    human data are turned into KTO data, so KTO sees exactly the annotator's judgements.
    """
    rows = []
    for pair in pairs:
        for side, label in (("chosen", True), ("rejected", False)):
            rows.append(
                {
                    "id": pair["id"],
                    "domain": pair["domain"],
                    "prompt": pair["prompt"],
                    "completion": pair[side],
                    "label": label,
                    "gold": pair[f"{side}_gold"],
                    "origin": pair[f"{side}_origin"],
                }
            )
    return rows
