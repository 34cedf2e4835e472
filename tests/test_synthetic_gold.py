"""The gold reward on hand-written cases, and its calibration against references and corruptions."""

from __future__ import annotations

import random
import statistics

import pytest

from prefshift.data.synthetic.annotators import BradleyTerryAnnotator
from prefshift.data.synthetic.corrupt import CORRUPTIONS, corrupt
from prefshift.data.synthetic.gold import EMPTY_SCORE, gold_breakdown, gold_reward
from prefshift.data.synthetic.tasks import TASKS, domains
from prefshift.data.synthetic.world import generate_split, oracle_write

NEWS_RECORD = {
    "task": "summarisation",
    "domain": "news",
    "key": {
        "who": "the mayor",
        "action": "closed",
        "object": "the bridge",
        "place": "at the harbour",
        "time": "in march",
        "reason": "heavy floods",
        "outcome": "traffic was diverted",
    },
    "context": {},
    "distractors": [
        {"role": "who", "slot": "who", "value": "the council"},
        {"role": "action", "slot": "action", "value": "repaired"},
        {"role": "object", "slot": "object", "value": "the stadium"},
        {"role": "place", "slot": "place", "value": "near the station"},
        {"role": "time", "slot": "time", "value": "last week"},
        {"role": "speaker", "slot": "who", "value": "the minister"},
    ],
    "surface": {"quote": "more details will follow soon"},
}
PERFECT = "the mayor closed the bridge at the harbour in march after heavy floods ; traffic was diverted ."

CLINIC_RECORD = {
    "task": "qa",
    "domain": "clinic",
    "key": {"answer": "an ice pack", "reason": "reduces swelling"},
    "context": {"problem": "a sprained ankle"},
    "distractors": [
        {"role": "problem_1", "slot": "problem", "value": "hay fever"},
        {"role": "answer_1", "slot": "answer", "value": "an antihistamine"},
        {"role": "reason_1", "slot": "reason", "value": "blocks histamine"},
    ],
    "surface": {"question": "what is recommended for a sprained ankle ?"},
}


def test_summary_cases() -> None:
    cases = {
        "perfect": PERFECT,
        "terse": "the mayor closed the bridge .",
        "distractor_place": PERFECT.replace("at the harbour", "near the station"),
        "invented_place": PERFECT.replace("at the harbour", "at the airport"),
        "extra_hallucination": PERFECT[:-2] + " , the senate .",
        "padded": PERFECT[:-2] + " , officials said , according to reports , in a statement , this week .",
        "repeated": PERFECT + " " + PERFECT,
        "empty": "   ",
        "off_topic": "thanks for reading , have a nice day .",
        "other_event": "the governor sold the port on the coast .",
    }
    g = {name: gold_reward(NEWS_RECORD, text) for name, text in cases.items()}
    assert g["perfect"] == 1.0
    assert g["terse"] == pytest.approx(3 / 7)
    assert g["distractor_place"] == pytest.approx(6 / 7 - 0.2)  # wrong, but grounded in the article
    assert g["invented_place"] == pytest.approx(6 / 7 - 0.3)  # wrong and hallucinated
    assert g["extra_hallucination"] == pytest.approx(1.0 - 0.3)
    assert g["padded"] == pytest.approx(1.0 - 0.02 * 11)  # 32 words, 21 needed
    assert g["repeated"] == pytest.approx(1.0 - 0.05 * 16 - 0.02 * 15)
    assert g["empty"] == EMPTY_SCORE
    assert g["off_topic"] == pytest.approx(-0.5)
    assert g["other_event"] == pytest.approx(-0.5 - 4 * 0.3)
    assert g["perfect"] > g["padded"] > g["extra_hallucination"] > g["distractor_place"] > g["invented_place"]
    assert (
        g["invented_place"] > g["terse"] > 0 > g["repeated"] > g["empty"] >= g["off_topic"] > g["other_event"]
    )


def test_summary_breakdown_names_the_errors() -> None:
    b = gold_breakdown(NEWS_RECORD, "the council closed the bridge at the airport .")
    assert set(b.stated) == {"action", "object"}
    assert b.wrong == ("the council", "at the airport") and b.hallucinated == ("at the airport",)
    assert not b.off_topic and b.to_dict()["total"] == b.total
    # Words are matched by their core, with or without articles, and case-insensitively.
    assert gold_breakdown(NEWS_RECORD, "Mayor closed bridge").stated == ("who", "action", "object")


def test_qa_cases() -> None:
    g = {
        name: gold_reward(CLINIC_RECORD, text)
        for name, text in {
            "perfect": "an ice pack is recommended , because it reduces swelling .",
            "restates_problem": "for a sprained ankle , an ice pack , because it reduces swelling .",
            "answer_only": "an ice pack .",
            "hedged": "an ice pack or an antihistamine , because it reduces swelling .",
            "wrong_answer": "an antihistamine is recommended , because it reduces swelling .",
            "hallucinated_answer": "paracetamol is recommended , because it reduces swelling .",
            "padded": "an ice pack is recommended , because it reduces swelling ,"
            " consult a doctor if unsure , follow the label , in most cases , as advised .",
            "refusal": "sorry , i can not give medical advice .",
            "empty": "",
        }.items()
    }
    assert g["perfect"] == 1.0
    assert g["restates_problem"] == pytest.approx(1.0 - 0.02 * 3)  # the problem itself is neutral
    assert g["answer_only"] == pytest.approx(0.6)
    assert g["hedged"] == pytest.approx(1.0 - 0.2 - 0.02)  # right answer, a wrong one, a word over
    assert g["wrong_answer"] == pytest.approx(0.4 - 0.2)
    assert g["hallucinated_answer"] == pytest.approx(0.4 - 0.3)
    assert g["refusal"] == g["empty"] == pytest.approx(-0.5)
    assert g["perfect"] > g["restates_problem"] > g["hedged"] > g["padded"] > g["answer_only"]
    assert g["answer_only"] > g["wrong_answer"] > g["hallucinated_answer"] > g["refusal"]


@pytest.mark.parametrize(("task", "domain"), [(t, d) for t in TASKS for d in domains(t)])
def test_references_beat_corruptions_and_lose_to_perfect(task: str, domain: str) -> None:
    rows = generate_split(task, domain, "test", 200)
    rng = random.Random(0)
    refs = [gold_reward(r["record"], r["reference"]) for r in rows]
    corrupted = [
        gold_reward(r["record"], corrupt(r["record"], r["reference"], CORRUPTIONS[i % len(CORRUPTIONS)], rng))
        for i, r in enumerate(rows)
    ]
    perfect = [gold_reward(r["record"], oracle_write(r["record"], domain, 1.0)) for r in rows]
    assert statistics.mean(refs) > statistics.mean(corrupted) + 0.4
    assert statistics.mean(perfect) > statistics.mean(refs)
    assert min(perfect) == 1.0  # a complete concise answer is never penalised


def test_padding_loses_a_little_but_a_length_biased_annotator_may_prefer_it() -> None:
    rows = generate_split("summarisation", "forum", "test", 200)
    rng = random.Random(0)
    biased, unbiased = BradleyTerryAnnotator(), BradleyTerryAnnotator(length_bias=0.0)  # default: mild bias
    losses, p_biased, p_unbiased = [], [], []
    for r in rows:
        padded = corrupt(r["record"], r["reference"], "pad", rng)
        g_ref, g_pad = gold_reward(r["record"], r["reference"]), gold_reward(r["record"], padded)
        lengths = (len(padded.split()), len(r["reference"].split()))
        losses.append(g_ref - g_pad)
        p_biased.append(biased.probability(g_pad, g_ref, *lengths))
        p_unbiased.append(unbiased.probability(g_pad, g_ref, *lengths))
    assert 0.0 < statistics.mean(losses) < 0.4
    assert 0.2 < statistics.mean(p_biased) < 0.5
    assert statistics.mean(p_biased) > statistics.mean(p_unbiased) + 0.1


def test_every_corruption_changes_the_reference_and_is_seeded() -> None:
    for task in TASKS:
        for row in generate_split(task, TASKS[task]["source"], "dev", 30):
            for kind in CORRUPTIONS:
                out = corrupt(row["record"], row["reference"], kind, random.Random(7))
                assert out != row["reference"] and out.strip()
                assert out == corrupt(row["record"], row["reference"], kind, random.Random(7))
    with pytest.raises(ValueError):
        corrupt(NEWS_RECORD, PERFECT, "nonsense", random.Random(0))
