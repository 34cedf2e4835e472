"""UltraFeedback binarized (``HuggingFaceH4/ultrafeedback_binarized``).

Columns: ``prompt``, ``prompt_id``, ``chosen``/``rejected`` (message lists ending with the assistant
response), ``score_chosen``/``score_rejected``. Splits: ``train_prefs``/``test_prefs`` (pairs),
``train_sft``/``test_sft``, ``train_gen``/``test_gen``. The prompt is the conversation before the last
assistant message of ``chosen`` (one user turn in practice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefshift.data.adapters.base import Adapter, Example, text


def _last_assistant(messages: list[dict[str, str]], field: str) -> str:
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError(f"field {field!r}: must end with an assistant message")
    return text(messages[-1]["content"], f"{field}[-1].content")


def _parse(row: Mapping[str, Any]) -> Example | None:
    chosen = _last_assistant(row["chosen"], "chosen")
    rejected = _last_assistant(row["rejected"], "rejected")
    if chosen == rejected:
        return None
    messages = [{"role": m["role"], "content": m["content"]} for m in row["chosen"][:-1]]
    if not messages:  # some exports keep only the response in chosen; the prompt column has the request
        messages = [{"role": "user", "content": text(row["prompt"], "prompt")}]
    return Example(
        id=str(row["prompt_id"]), domain="ultrafeedback", messages=messages, chosen=chosen, rejected=rejected
    )


ULTRAFEEDBACK = Adapter(
    name="ultrafeedback_binarized",
    hub_id="HuggingFaceH4/ultrafeedback_binarized",
    split="train_prefs",
    task="dialogue",
    columns=("prompt", "prompt_id", "chosen", "rejected", "score_chosen", "score_rejected"),
    parse=_parse,
)
