"""Bradley-Terry annotators: calibrated noise, length bias, and the preference/KTO rows they build."""

from __future__ import annotations

import pytest

from prefshift.data.synthetic.annotators import (
    BradleyTerryAnnotator,
    build_preference_pairs,
    candidate_pool,
    sigmoid,
    unpair,
)
from prefshift.data.synthetic.world import generate_split, oracle_write


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    return generate_split("summarisation", "forum", "train", 300) + generate_split(
        "qa", "everyday", "train", 200
    )


@pytest.fixture(scope="module")
def samples(examples: list[dict]) -> dict[str, list[str]]:
    # Stand-ins for model samples: oracle outputs of mixed quality.
    return {e["id"]: [oracle_write(e["record"], e["domain"], q) for q in (0.3, 0.6, 0.9)] for e in examples}


def _pairs(
    examples: list[dict], samples: dict[str, list[str]], annotator: BradleyTerryAnnotator
) -> list[dict]:
    return build_preference_pairs(examples, annotator, samples, pairs_per_prompt=3, seed=5)


def test_agreement_with_gold_matches_bradley_terry(
    examples: list[dict], samples: dict[str, list[str]]
) -> None:
    temperature = 0.15
    rows = _pairs(examples, samples, BradleyTerryAnnotator(temperature=temperature, length_bias=0.0, seed=1))
    decided = [r for r in rows if r["chosen_gold"] != r["rejected_gold"]]
    assert len(decided) > 1000
    measured = sum(r["chosen_gold"] > r["rejected_gold"] for r in decided) / len(decided)
    expected = sum(sigmoid(abs(r["chosen_gold"] - r["rejected_gold"]) / temperature) for r in decided) / len(
        decided
    )
    assert measured == pytest.approx(expected, abs=0.03)
    assert 0.6 < measured < 0.97  # noisy but informative


def test_length_bias_favours_longer_responses(examples: list[dict], samples: dict[str, list[str]]) -> None:
    def longer_wins(rows: list[dict]) -> float:
        unequal = [r for r in rows if len(r["chosen"].split()) != len(r["rejected"].split())]
        return sum(len(r["chosen"].split()) > len(r["rejected"].split()) for r in unequal) / len(unequal)

    fair = _pairs(examples, samples, BradleyTerryAnnotator(temperature=0.15, length_bias=0.0, seed=1))
    biased = _pairs(examples, samples, BradleyTerryAnnotator(temperature=0.15, length_bias=0.03, seed=1))
    # Same pairs and same random numbers: only the bias differs.
    assert [{r["chosen"], r["rejected"]} for r in fair] == [{r["chosen"], r["rejected"]} for r in biased]
    assert longer_wins(biased) > longer_wins(fair) + 0.05


def test_annotator_probability_and_validation() -> None:
    a = BradleyTerryAnnotator(temperature=0.1, length_bias=0.01)
    assert a.probability(0.5, 0.5, 10, 10) == 0.5
    assert a.probability(0.6, 0.5, 10, 10) == pytest.approx(sigmoid(1.0))
    assert a.probability(0.5, 0.5, 20, 10) == pytest.approx(sigmoid(1.0))
    assert a.probability(0.5, 0.6, 20, 10) == pytest.approx(0.5)
    assert sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0
    with pytest.raises(ValueError):
        BradleyTerryAnnotator(temperature=0.0)


def test_candidate_pool_shares() -> None:
    example = generate_split("summarisation", "news", "dev", 1)[0]
    model = ["the mayor said so .", "", "the mayor said so ."]
    pool = candidate_pool(example, model, n_corrupted=3)
    origins = [c["origin"] for c in pool]
    assert origins[:2] == ["model", "reference"] and len(pool) <= 5  # empty and duplicate samples dropped
    assert all(o.startswith("corrupt:") for o in origins[2:])
    assert candidate_pool(example, model, n_model=0, include_reference=False, n_corrupted=2) == pool[2:4]


def test_pair_and_kto_rows(examples: list[dict], samples: dict[str, list[str]]) -> None:
    rows = build_preference_pairs(examples[:50], BradleyTerryAnnotator(), samples, pairs_per_prompt=2)
    assert rows == build_preference_pairs(examples[:50], BradleyTerryAnnotator(), samples, pairs_per_prompt=2)
    assert len(rows) == 100
    expected_keys = {"id", "domain", "prompt", "chosen", "rejected", "chosen_gold", "rejected_gold"}
    assert set(rows[0]) == expected_keys | {"chosen_origin", "rejected_origin"}
    assert all(r["chosen"] != r["rejected"] for r in rows)
    kto = unpair(rows)
    assert len(kto) == 2 * len(rows)
    assert [r["label"] for r in kto[:2]] == [True, False]
    assert kto[0]["completion"] == rows[0]["chosen"] and kto[1]["gold"] == rows[0]["rejected_gold"]
    assert set(kto[0]) == {"id", "domain", "prompt", "completion", "label", "gold", "origin"}
