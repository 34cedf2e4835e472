"""Helpfulness-QA domains: question, context, reference answer and oracle answer from a latent record.

A record asks how to deal with a `problem`; the context states the `answer` (a remedy or fix) and the
`reason` it works, beside one or two distractor tips for other problems. A helpful answer gives the
right answer fact and its reason, briefly. Three domains share the task:

- `everyday` (source): household tips from friends and family. References are chatty: the reason is
  sometimes left out and a sign-off is sometimes added.
- `clinic` (target): patient leaflets. References are cautious: the reason is often missing, a
  disclaimer is usual, and some hedge with a distractor treatment.
- `tech` (second target): support articles. References are terse ("try x ."): the reason is often
  missing and some offer a distractor fix as an alternative.

The prompt is domain-neutral: "question : <question> context : <context> answer :".
"""

from __future__ import annotations

import random
from typing import Any

from prefshift.data.synthetic.records import contradicting_value, distractor
from prefshift.data.synthetic.text import oracle_knobs, pad

PROMPT_TEMPLATE = "question : {question} context : {context} answer :"

_QUESTIONS = {
    "everyday": [
        "how do i deal with {problem} ?",
        "any tips for {problem} ?",
        "what is the best fix for {problem} ?",
    ],
    "clinic": [
        "what is recommended for {problem} ?",
        "how should a patient manage {problem} ?",
        "which treatment helps with {problem} ?",
    ],
    "tech": [
        "how do i fix {problem} ?",
        "what is the recommended fix for {problem} ?",
        "what should i try for {problem} ?",
    ],
}

# Placeholders {problem} {answer} {reason}: "fact" states the key tip, "side" a distractor tip.
_CONTEXT = {
    "everyday": {
        "fact": [
            "for {problem} , {answer} is the way to go because it {reason} .",
            "{answer} sorts out {problem} since it {reason} .",
            "if you have {problem} , try {answer} : it {reason} .",
        ],
        "side": [
            "{answer} is better for {problem} because it {reason} .",
            "my gran swears by {answer} for {problem} , as it {reason} .",
        ],
        "filler": [
            "people ask about this all the time .",
            "it is cheap and easy to do at home .",
            "most of these tips come from friends and family .",
            "do not overthink it .",
            "everyone has their own favourite trick .",
        ],
    },
    "clinic": {
        "fact": [
            "for {problem} , clinicians recommend {answer} because it {reason} .",
            "{answer} is the first line option for {problem} as it {reason} .",
        ],
        "side": [
            "{answer} is indicated for {problem} since it {reason} .",
            "for {problem} , {answer} may be offered because it {reason} .",
        ],
        "filler": [
            "this leaflet summarises common advice .",
            "follow the dosage on the label .",
            "seek urgent care if symptoms worsen quickly .",
            "children may need a different plan .",
            "keep a note of when symptoms started .",
        ],
    },
    "tech": {
        "fact": [
            "if you see {problem} , apply {answer} : it {reason} .",
            "the standard fix for {problem} is {answer} , because it {reason} .",
        ],
        "side": [
            "for {problem} , use {answer} instead , since it {reason} .",
            "{answer} helps with {problem} because it {reason} .",
        ],
        "filler": [
            "this article applies to most devices .",
            "back up your files before you start .",
            "steps may vary by version .",
            "contact support if the issue returns .",
            "save any open work first .",
        ],
    },
}

# Phrases a verbose writer pads with, per domain; none is a lexicon value.
PADDING = {
    "everyday": ["hope this helps", "good luck", "easy fix", "honestly"],
    "clinic": ["consult a doctor if unsure", "follow the label", "in most cases", "as advised"],
    "tech": ["in most cases", "restart if needed", "back up first", "as documented"],
}


def build_prompt(record: dict[str, Any], document: str) -> str:
    """The model prompt: the question `render_document` stored in the record, then the context."""
    return PROMPT_TEMPLATE.format(question=record["surface"]["question"], context=document)


def _side_tips(record: dict[str, Any]) -> list[dict[str, str]]:
    n = sum(d["slot"] == "problem" for d in record["distractors"])
    return [
        {s: distractor(record, f"{s}_{k}") for s in ("problem", "answer", "reason")} for k in range(1, n + 1)
    ]


def render_document(record: dict[str, Any], rng: random.Random) -> str:
    """The context (about 40-60 words): the key tip, the distractor tips and filler, shuffled.

    Also stores the user's question in `record["surface"]["question"]`.
    """
    t = _CONTEXT[record["domain"]]
    record["surface"]["question"] = rng.choice(_QUESTIONS[record["domain"]]).format(**record["context"])
    fact = rng.choice(t["fact"]).format(problem=record["context"]["problem"], **record["key"])
    sides = [rng.choice(t["side"]).format(**tip) for tip in _side_tips(record)]
    fillers = rng.sample(t["filler"], rng.randint(4 - len(sides), 5 - len(sides)))
    body = [fact, *sides, *fillers[1:]]
    rng.shuffle(body)
    return " ".join([fillers[0], *body])


def write_answer(facts: dict[str, str], domain: str) -> str:
    """An answer in `domain`'s style stating exactly the given facts (`answer`, `reason`); "" if none."""
    answer, reason = facts.get("answer"), facts.get("reason")
    lead = {"everyday": "{} works best", "clinic": "{} is recommended", "tech": "use {}"}[domain]
    parts = [lead.format(answer)] if answer else []
    if reason:
        parts.append(f"because it {reason}")
    return " , ".join(parts) + " ." if parts else ""


# Probability that a domain's reference gives the reason.
_REFERENCE_REASON = {"everyday": 0.7, "clinic": 0.45, "tech": 0.45}


def write_reference(record: dict[str, Any], rng: random.Random) -> str:
    """The dataset's own answer for a record, imperfect in the ways its domain's data are."""
    domain, key = record["domain"], record["key"]
    reason = key["reason"] if rng.random() < _REFERENCE_REASON[domain] else None
    other = distractor(record, "answer_1")
    if domain == "everyday":
        text = f"{key['answer']} works great" + (f" , it {reason}" if reason else "") + " !"
        if rng.random() < 0.4:
            text += " " + rng.choice(["hope this helps !", "good luck !", "worked for me anyway ."])
        return text
    if domain == "clinic":
        text = f"{key['answer']} may help with {record['context']['problem']}" + (
            f" as it {reason}" if reason else ""
        )
        text += " ."
        if rng.random() < 0.25:
            text += f" {other} is another option ."
        if rng.random() < 0.8:
            text += " " + rng.choice(
                ["please consult a doctor if symptoms persist .", "always check with a pharmacist ."]
            )
        return text
    if domain == "tech":
        text = f"try {key['answer']}" + (f" or {other}" if rng.random() < 0.25 else "") + " ."
        return text + (f" it {reason} ." if reason else "")
    raise ValueError(f"unknown qa domain {domain!r}")


def write_oracle(record: dict[str, Any], domain: str, quality: float, rng: random.Random) -> str:
    """A teacher's answer in `domain`'s style from the latent record.

    Knobs as in `text.oracle_knobs`, with up to 6 padding phrases at quality 0.
    """
    p_state, p_wrong, pad_scale = oracle_knobs(quality)
    facts: dict[str, str] = {}
    for slot in ("answer", "reason"):
        if rng.random() < p_state:
            wrong = rng.random() < p_wrong
            facts[slot] = contradicting_value(record, slot, domain, rng) if wrong else record["key"][slot]
    pads = [rng.choice(PADDING[domain]) for _ in range(round(rng.uniform(0.0, 6.0 * pad_scale)))]
    return pad(write_answer(facts, domain), pads)
