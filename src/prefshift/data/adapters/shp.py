"""Stanford Human Preferences (``stanfordnlp/SHP``).

Columns: ``history`` (the Reddit post), ``human_ref_A``/``human_ref_B`` (two top-level comments),
``labels`` (1 if A is preferred), ``score_A``/``score_B``, ``domain`` (``askculinary_train``, ...),
``post_id``. A post has many comment pairs, so the id also names the two comments. One subreddit is
chosen with ``DataSourceSpec.data_dir`` (the hub repository has one folder per subreddit), e.g.
``askengineers`` as source and ``askculinary`` as target.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from prefshift.data.adapters.base import Adapter, Example, text

_SPLIT_SUFFIX = re.compile(r"_(train|validation|test)$")


def _parse(row: Mapping[str, Any]) -> Example:
    label = int(row["labels"])
    if label not in (0, 1):
        raise ValueError(f"field 'labels': expected 0 or 1, got {label}")
    a, b = text(row["human_ref_A"], "human_ref_A"), text(row["human_ref_B"], "human_ref_B")
    chosen, rejected = (a, b) if label == 1 else (b, a)
    ids = [str(row["post_id"]), *(str(row[c]) for c in ("c_root_id_A", "c_root_id_B") if row.get(c))]
    return Example(
        id=":".join(ids),
        domain=_SPLIT_SUFFIX.sub("", str(row["domain"])),
        messages=[{"role": "user", "content": text(row["history"], "history")}],
        chosen=chosen,
        rejected=rejected,
    )


SHP = Adapter(
    name="shp",
    hub_id="stanfordnlp/SHP",
    task="dialogue",
    columns=("history", "human_ref_A", "human_ref_B", "labels", "domain", "post_id"),
    parse=_parse,
)
