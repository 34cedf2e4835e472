"""Anthropic HH-RLHF (``Anthropic/hh-rlhf``): ``chosen`` and ``rejected`` full transcripts.

Each side is the whole conversation, ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``, and the two differ only
in the last assistant turn. The prompt is the common prefix of the two transcripts up to (and
including) its last ``"\\n\\nAssistant:"``; the responses are what follows. Cutting at the marker, not at
the raw common prefix, keeps a shared first word of the two responses in the responses. Rows whose
responses are empty or identical carry no preference and are dropped (HH has a few of each).
Subsets (``helpful-base``, ``harmless-base``, ...) are chosen with ``DataSourceSpec.data_dir``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

from prefshift.data.adapters.base import Adapter, Example, Message, text

ASSISTANT = "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt transcript ending in ``"\\n\\nAssistant:"``, chosen response, rejected response)."""
    shared = os.path.commonprefix([chosen, rejected])
    cut = shared.rfind(ASSISTANT)
    if cut < 0:
        raise ValueError("chosen and rejected share no '\\n\\nAssistant:' turn")
    prompt = chosen[: cut + len(ASSISTANT)]
    return prompt, chosen[len(prompt) :].strip(), rejected[len(prompt) :].strip()


def transcript_messages(transcript: str) -> list[Message]:
    """HH transcript → ``[{role, content}]``; the trailing empty assistant turn of a prompt is dropped."""
    parts = _TURN.split(transcript)
    if parts[0].strip():
        raise ValueError(f"transcript does not start with a Human/Assistant turn: {parts[0][:40]!r}")
    messages = [
        {"role": _ROLE[speaker], "content": content.strip()}
        for speaker, content in zip(parts[1::2], parts[2::2], strict=True)
    ]
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("the prompt must end with a Human turn")
    return messages


def _parse(row: Mapping[str, Any]) -> Example | None:
    text(row["chosen"], "chosen"), text(row["rejected"], "rejected")  # type checks; the raw text keeps "\n\n"
    prompt, chosen, rejected = split_transcripts(row["chosen"], row["rejected"])
    if not chosen or not rejected or chosen == rejected:
        return None
    return Example(
        id=hashlib.sha1(prompt.encode()).hexdigest()[:16],  # HH has no id column
        domain="hh_rlhf",
        messages=transcript_messages(prompt),
        chosen=chosen,
        rejected=rejected,
    )


HH_RLHF = Adapter(
    name="hh_rlhf",
    hub_id="Anthropic/hh-rlhf",
    task="dialogue",
    columns=("chosen", "rejected"),
    parse=_parse,
)
