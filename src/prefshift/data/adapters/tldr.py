"""Reddit TL;DR (Stiennon et al. 2020): human comparisons and the SFT references.

* ``tldr_preference`` — ``openai/summarize_from_feedback``, config ``comparisons``: ``info`` (``post``,
  ``title``, ``subreddit``; CNN/DM rows of the validation split carry ``article``/``site`` instead),
  ``summaries`` (two ``{text, ...}``), ``choice`` (index of the preferred summary).
* ``tldr_sft`` — ``trl-lib/tldr``: ``prompt`` (already in the TL;DR template), ``completion``.
* ``tldr_sft_carper`` — ``CarperAI/openai_summarize_tldr``: ``prompt``, ``label``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from prefshift.data.adapters.base import Adapter, Example, text
from prefshift.data.adapters.templates import news_prompt, tldr_prompt

_SUBREDDIT = re.compile(r"SUBREDDIT:\s*r/(\S+)")


def _comparison(row: Mapping[str, Any]) -> Example:
    info = row["info"]
    summaries = [text(s["text"], "summaries.text") for s in row["summaries"]]
    if len(summaries) != 2:
        raise ValueError(f"field 'summaries': expected 2 summaries, got {len(summaries)}")
    choice = int(row["choice"])
    if choice not in (0, 1):
        raise ValueError(f"field 'choice': expected 0 or 1, got {choice}")
    if info.get("post"):
        prompt = tldr_prompt(
            text(info["post"], "info.post"), text(info["title"], "info.title"), info["subreddit"]
        )
        domain = info["subreddit"]
    else:  # a CNN/DM article in the validation split: same format, article in place of the post
        prompt = news_prompt(text(info["article"], "info.article"))
        domain = info.get("site") or "news"
    return Example(
        id=str(info["id"]),
        domain=domain,
        messages=[{"role": "user", "content": prompt}],
        chosen=summaries[choice],
        rejected=summaries[1 - choice],
    )


def _sft(completion_column: str):
    def parse(row: Mapping[str, Any]) -> Example:
        prompt = text(row["prompt"], "prompt")
        match = _SUBREDDIT.search(prompt)
        return Example(
            id=hashlib.sha1(prompt.encode()).hexdigest()[:16],  # the SFT sets have no id column
            domain=match.group(1) if match else "tldr",
            messages=[{"role": "user", "content": prompt}],
            chosen=text(row[completion_column], completion_column),
        )

    return parse


TLDR_PREFERENCE = Adapter(
    name="tldr_preference",
    hub_id="openai/summarize_from_feedback",
    config_name="comparisons",
    task="summarisation",
    columns=("info", "summaries", "choice"),
    parse=_comparison,
)
TLDR_SFT = Adapter(
    name="tldr_sft",
    hub_id="trl-lib/tldr",
    task="summarisation",
    columns=("prompt", "completion"),
    parse=_sft("completion"),
    has_pairs=False,
)
TLDR_SFT_CARPER = Adapter(
    name="tldr_sft_carper",
    hub_id="CarperAI/openai_summarize_tldr",
    task="summarisation",
    columns=("prompt", "label"),
    parse=_sft("label"),
    has_pairs=False,
)
