"""CNN/DailyMail (``abisee/cnn_dailymail``, config ``3.0.0``): ``article``, ``highlights``, ``id``.

The summarisation target domain: its prompts are unlabelled target prompts, ``highlights`` the
dataset references that win rates are measured against (and the rejected side of teacher-generation
pseudo-labels). Highlights are one sentence per line; they are joined into one paragraph so a
reference reads like a TL;DR summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefshift.data.adapters.base import Adapter, Example, text
from prefshift.data.adapters.templates import news_prompt


def _parse(row: Mapping[str, Any]) -> Example:
    highlights = " ".join(line.strip() for line in text(row["highlights"], "highlights").splitlines())
    return Example(
        id=str(row["id"]),
        domain="cnn_dailymail",
        messages=[{"role": "user", "content": news_prompt(text(row["article"], "article"))}],
        chosen=highlights.strip(),
    )


CNN_DAILYMAIL = Adapter(
    name="cnn_dailymail",
    hub_id="abisee/cnn_dailymail",
    config_name="3.0.0",
    task="summarisation",
    columns=("article", "highlights", "id"),
    parse=_parse,
    has_pairs=False,
)
