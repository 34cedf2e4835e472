"""Summarisation domains: how a latent event becomes a document, a reference, and an oracle summary.

Three domains share the task and differ in surface form (mirroring Reddit TL;DR -> CNN/DailyMail):

- `forum` (source): a first-person, informal post. The key facts sit mid-post between chatter and an
  unrelated side story; the post ends with a question. Its reference is the poster's own TL;DR:
  informal, articles often dropped, a fact sometimes missing, sometimes a trailing question.
- `news` (target): a third-person, formal article with the key facts in the lead, then the reason,
  the outcome, a quote and a background paragraph as distractors. Its reference is a terse highlight
  that often omits the why and the outcome and sometimes quotes a distractor.
- `email` (second target): a workplace update with greeting and sign-off, key facts after the intro,
  an unrelated reminder as distractor. Its reference is a subject line: place, reason and outcome
  are usually left out.

The prompt is domain-neutral ("summarize : <document> tl;dr :") so the shift is in the surface form
only. All text is lower-case with every word and punctuation mark separated by one space.
"""

from __future__ import annotations

import random
from typing import Any

from prefshift.data.synthetic.lexicon import SUMMARY_SLOTS, core_of
from prefshift.data.synthetic.records import contradicting_value, distractor
from prefshift.data.synthetic.text import oracle_knobs, pad

PROMPT_TEMPLATE = "summarize : {document} tl;dr :"

_EVENT_SLOTS = ("who", "action", "object", "place", "time")

# --- document templates ------------------------------------------------------------------------
# Placeholders {who} {action} {object} {place} {time} {reason} {outcome} {speaker} {quote}; an
# event template takes the five event slots.

_FORUM = {
    "opening": [
        "hey all ,",
        "hello folks ,",
        "long time lurker .",
        "throwaway account , sorry .",
        "first post here .",
    ],
    "chatter": [
        "i have been stressing about this all day .",
        "sorry for the wall of text .",
        "english is not my first language , sorry .",
        "this is going to sound dumb but bear with me .",
        "i honestly do not know what to think .",
        "my coffee went cold while typing this lol .",
        "idk , maybe i am overthinking it .",
        "i never thought this would happen to me .",
    ],
    "key": [
        "so {time} {who} {action} {object} {place} .",
        "anyway , {who} {action} {object} {place} {time} .",
        "{time} {who} just {action} {object} {place} , out of nowhere .",
    ],
    "reason": [
        "apparently it was because of {reason} .",
        "they said it was due to {reason} .",
        "the excuse was {reason} , if you can believe it .",
    ],
    "outcome": [
        "long story short , {outcome} .",
        "and because of that {outcome} .",
        "the result ? {outcome} .",
    ],
    "side": [
        "side note , {who} {action} {object} {place} {time} , different story .",
        "for context , {who} {action} {object} {place} {time} .",
    ],
    "speaker": [
        "{speaker} thinks i am overreacting .",
        "i asked {speaker} and got no help at all .",
        "{speaker} said i should post here .",
    ],
    "question": [
        "what would you do ?",
        "am i overreacting ?",
        "what should i do now ?",
        "any advice ?",
        "is this even legal ?",
        "has this happened to anyone else ?",
    ],
}

_NEWS = {
    "lead": [
        "{who} {action} {object} {place} {time} , officials said .",
        "{time} , {who} {action} {object} {place} .",
        "{who} {action} {object} {place} {time} , according to a statement .",
    ],
    "reason": [
        "the decision followed {reason} .",
        "officials cited {reason} as the main factor .",
        "the move came after {reason} .",
    ],
    "outcome": [
        "as a result , {outcome} .",
        "{outcome} , local reports said .",
        "within hours , {outcome} .",
    ],
    "quote": ['" {quote} , " said {speaker} .', '" {quote} , " {speaker} told reporters .'],
    "quotes": [
        "the situation is under control",
        "this was not an easy choice",
        "more details will follow soon",
        "the public deserves answers",
        "we will review every option",
    ],
    "background": [
        "in a separate case , {who} {action} {object} {place} {time} .",
        "{time} , {who} {action} {object} {place} , a move critics called overdue .",
        "analysts noted that {who} {action} {object} {place} {time} .",
    ],
    "closing": [
        "the story is developing .",
        "further updates are expected later this week .",
        "officials did not respond to requests for comment .",
        "it is the second such case this year .",
        "critics have long warned about the issue .",
    ],
}

_EMAIL = {
    "greeting": ["hi team ,", "hello all ,", "hi everyone ,", "good morning ,"],
    "intro": [
        "quick update below .",
        "a short note on where things stand .",
        "sharing this so everyone is in the loop .",
        "hope your week is going well .",
    ],
    "key": [
        "{who} {action} {object} {place} {time} .",
        "heads up : {time} {who} {action} {object} {place} .",
        "please note that {who} {action} {object} {place} {time} .",
    ],
    "reason": [
        "this was due to {reason} .",
        "the reason given was {reason} .",
        "we understand it followed {reason} .",
    ],
    "outcome": [
        "as a result , {outcome} .",
        "the impact so far : {outcome} .",
        "knock-on effect : {outcome} .",
    ],
    "side": [
        "unrelated reminder : {who} {action} {object} {place} {time} .",
        "separately , {who} {action} {object} {place} {time} , no action needed .",
    ],
    "speaker": ["{speaker} has the details if you need them .", "please direct questions to {speaker} ."],
    "signoff": ["thanks ,", "best ,", "cheers ,"],
    "names": ["sam", "alex", "priya", "jordan", "kim"],
}

# Words a verbose writer pads with, per domain; none is a lexicon value.
PADDING = {
    "forum": ["honestly", "so yeah", "it is a mess", "just saying", "kind of", "lol"],
    "news": ["officials said", "according to reports", "in a statement", "the report said", "this week"],
    "email": ["as discussed", "for your awareness", "more to follow", "please note", "fyi"],
}


def build_prompt(record: dict[str, Any], document: str) -> str:
    """The model prompt for a summarisation document (the same for every domain)."""
    return PROMPT_TEMPLATE.format(document=document)


def _side_event(record: dict[str, Any]) -> dict[str, str]:
    return {slot: distractor(record, slot) for slot in _EVENT_SLOTS}


def render_document(record: dict[str, Any], rng: random.Random) -> str:
    """Write the record as a document of its own domain (about 40-90 words).

    A news article's quote is stored in `record["surface"]["quote"]` for highlights that lift it.
    """
    key, domain = record["key"], record["domain"]
    side, speaker = _side_event(record), distractor(record, "speaker")
    if domain == "forum":
        t = _FORUM
        middle = [rng.choice(t["key"]).format(**key), rng.choice(t["reason"]).format(**key)]
        middle.append(rng.choice(t["outcome"]).format(**key))
        side_sentence = rng.choice(t["side"]).format(**side)
        chatter = rng.sample(t["chatter"], rng.randint(0, 2))
        before = [rng.choice(t["opening"]), *chatter[:1]]
        after = [rng.choice(t["speaker"]).format(speaker=speaker), *chatter[1:]]
        (before if rng.random() < 0.6 else after).append(side_sentence)
        sentences = before + middle + after + [rng.choice(t["question"])]
    elif domain == "news":
        t = _NEWS
        record["surface"]["quote"] = rng.choice(t["quotes"])
        quote = rng.choice(t["quote"]).format(quote=record["surface"]["quote"], speaker=speaker)
        tail = [rng.choice(t["outcome"]).format(**key), quote]
        if rng.random() < 0.4:
            tail.reverse()
        sentences = [rng.choice(t["lead"]).format(**key), rng.choice(t["reason"]).format(**key), *tail]
        sentences.append(rng.choice(t["background"]).format(**side))
        sentences += rng.sample(t["closing"], rng.randint(1, 2))
    elif domain == "email":
        t = _EMAIL
        body = [rng.choice(t["key"]).format(**key), rng.choice(t["reason"]).format(**key)]
        body.append(rng.choice(t["outcome"]).format(**key))
        side_sentence = rng.choice(t["side"]).format(**side)
        if rng.random() < 0.4:
            body.insert(0, side_sentence)
        else:
            body.append(side_sentence)
        sentences = [rng.choice(t["greeting"]), rng.choice(t["intro"]), *body]
        sentences += [rng.choice(t["speaker"]).format(speaker=speaker), rng.choice(t["signoff"])]
        sentences.append(rng.choice(t["names"]))
    else:
        raise ValueError(f"unknown summarisation domain {domain!r}")
    return " ".join(sentences)


def write_summary(facts: dict[str, str], domain: str, subject_tag: str = "update :") -> str:
    """A summary in `domain`'s house style stating exactly the given facts (slot -> phrase).

    Missing slots are left out ("" when none is given). This is the shared skeleton of references
    and oracle outputs; `subject_tag` is the subject-line prefix of the email style.
    """
    if not facts:
        return ""
    clause = " ".join(facts[s] for s in _EVENT_SLOTS if s in facts)
    reason, outcome = facts.get("reason"), facts.get("outcome")
    if domain == "forum":
        text = clause + (f" because of {reason}" if reason else "") + (f" , so {outcome}" if outcome else "")
    elif domain == "news":
        text = clause + (f" after {reason}" if reason else "") + (f" ; {outcome}" if outcome else "")
    elif domain == "email":
        text = (
            f"{subject_tag} {clause}"
            + (f" due to {reason}" if reason else "")
            + (f" , {outcome}" if outcome else "")
        )
    else:
        raise ValueError(f"unknown summarisation domain {domain!r}")
    return f"{text} ."


def _keep(record: dict[str, Any], rng: random.Random, probs: dict[str, float]) -> dict[str, str]:
    return {slot: record["key"][slot] for slot in SUMMARY_SLOTS if rng.random() < probs[slot]}


# Probability that a domain's reference states each key fact, in SUMMARY_SLOTS order
# (who, action, object, place, time, reason, outcome).
_REFERENCE_KEEP = {
    "forum": dict(zip(SUMMARY_SLOTS, (0.95, 1.0, 0.95, 0.55, 0.65, 0.7, 0.6), strict=True)),
    "news": dict(zip(SUMMARY_SLOTS, (1.0, 1.0, 1.0, 0.7, 0.65, 0.2, 0.25), strict=True)),
    "email": dict(zip(SUMMARY_SLOTS, (0.95, 1.0, 1.0, 0.3, 0.75, 0.4, 0.3), strict=True)),
}


def write_reference(record: dict[str, Any], rng: random.Random) -> str:
    """The dataset's own reference for a record, imperfect in the ways its domain's data are."""
    domain = record["domain"]
    facts = _keep(record, rng, _REFERENCE_KEEP[domain])
    if domain == "forum":
        # Informal: drop articles of who/object half the time, sometimes end with a question.
        for slot in ("who", "object"):
            if slot in facts and rng.random() < 0.5:
                facts[slot] = " ".join(core_of(facts[slot]))
        text = write_summary(facts, "forum")
        if rng.random() < 0.35:
            text += " " + rng.choice(["what do i do ?", "any advice ?", "am i wrong ?"])
        return text
    if domain == "news":
        outcome = facts.pop("outcome", None)  # a highlight of its own, when kept
        sentences = [write_summary(facts, "news")] + ([f"{outcome} ."] if outcome else [])
        if rng.random() < 0.3:  # highlights sometimes lift a distractor from the article
            if rng.random() < 0.5:
                quote = record["surface"]["quote"]
                sentences.append(f'{distractor(record, "speaker")} : " {quote} " .')
            else:
                side = _side_event(record)
                sentences.append(f"{side['who']} {side['action']} {side['object']} .")
        return " ".join(sentences)
    if domain == "email":
        tag = rng.choice(["update :", "fyi :", "re :", "heads up :"])
        return write_summary(facts, "email", subject_tag=tag)
    raise ValueError(f"unknown summarisation domain {domain!r}")


def write_oracle(record: dict[str, Any], domain: str, quality: float, rng: random.Random) -> str:
    """A teacher's summary in `domain`'s style, written from the latent record.

    `quality` in [0, 1] sets the share of facts stated, the chance that a stated fact is wrong and the
    padding (up to 12 phrases at quality 0, added before the final full stop so no fact is split);
    see `text.oracle_knobs`.
    """
    p_state, p_wrong, pad_scale = oracle_knobs(quality)
    facts: dict[str, str] = {}
    for slot in SUMMARY_SLOTS:
        if rng.random() < p_state:
            wrong = rng.random() < p_wrong
            facts[slot] = contradicting_value(record, slot, domain, rng) if wrong else record["key"][slot]
    pads = [rng.choice(PADDING[domain]) for _ in range(round(rng.uniform(0.0, 12.0 * pad_scale)))]
    return pad(write_summary(facts, domain), pads)
