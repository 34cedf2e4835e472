"""Tokenise validated datasets into ``prompt_ids`` + ``completion_ids`` rows for the packed trainer.

Special tokens are where preference pipelines most often go wrong (BOS doubled when a chat template
already renders it, EOS missing so the model never learns to stop). The rules here:

* the prompt gets exactly one BOS when the tokenizer normally adds one, whether or not the text or the
  chat template already starts with it;
* the completion is cut from the tokenisation of ``prompt + completion`` at the common prefix with the
  prompt's tokenisation (as TRL does, so tokens that merge across the boundary stay correct), and gets
  exactly one EOS at the end.
"""

from __future__ import annotations

from typing import Any

import datasets
from transformers import PreTrainedTokenizerBase

from prefshift.data.formats import Kind


def _adds_bos(tok: PreTrainedTokenizerBase) -> bool:
    bos = tok.bos_token_id
    return bos is not None and tok("a", add_special_tokens=True)["input_ids"][:1] == [bos]


def encode(tok: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of ``text`` with at most one leading BOS (only if the tokenizer adds one)."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if _adds_bos(tok):
        bos = tok.bos_token_id
        while len(ids) > 1 and ids[0] == bos and ids[1] == bos:
            ids = ids[1:]
        if not ids or ids[0] != bos:
            ids = [bos, *ids]
    return ids


def _render(tok: PreTrainedTokenizerBase, prompt: Any, completion: Any) -> tuple[str, str]:
    """Texts of the prompt alone and of prompt+completion (chat template for conversations)."""
    if isinstance(prompt, list):
        if tok.chat_template is None:
            raise ValueError("conversational data needs a tokenizer with a chat template")
        p = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(prompt + completion, tokenize=False)
        return p, full
    return prompt, prompt + completion


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def split_prompt_completion(
    tok: PreTrainedTokenizerBase, prompt: Any, completion: Any
) -> tuple[list[int], list[int]]:
    """(prompt_ids, completion_ids) with one BOS on the prompt and one EOS ending the completion."""
    p_text, full_text = _render(tok, prompt, completion)
    p_ids = encode(tok, p_text)
    full = encode(tok, full_text)
    n = _common_prefix(p_ids, full)
    comp = full[n:]
    eos = tok.eos_token_id
    if eos is not None:
        while comp and comp[-1] == eos:
            comp = comp[:-1]
        comp = [*comp, eos]
    return p_ids[:n] if n else p_ids, comp


def _truncate(prompt: list[int], comps: list[list[int]], max_prompt: int | None, max_comp: int | None):
    if max_prompt is not None and len(prompt) > max_prompt:
        # keep the end of the prompt (where the instruction usually is) and its BOS
        keep = prompt[-(max_prompt - 1) :] if max_prompt > 1 else []
        prompt = [prompt[0], *keep]
    if max_comp is not None:
        comps = [c[:max_comp] for c in comps]
    return prompt, comps


def tokenize(
    ds: datasets.Dataset,
    tok: PreTrainedTokenizerBase,
    kind: Kind,
    max_prompt_length: int | None = None,
    max_completion_length: int | None = None,
) -> datasets.Dataset:
    """Map a validated dataset to ``prompt_ids``, ``completion_ids`` (K lists), ``length`` (+ ``label``).

    K = 2 for paired data (chosen, rejected); 1 for SFT; 2 for unpaired data, where the second
    completion is the *next* row's completion — the mismatched pair from which KTO estimates its
    reference point. Fixing the mismatch at the dataset level (not per batch) keeps reference
    log-probs cacheable.
    """
    n = len(ds)

    def row(example: dict[str, Any], idx: int) -> dict[str, Any]:
        if kind == "paired":
            p, c = split_prompt_completion(tok, example["prompt"], example["chosen"])
            p2, r = split_prompt_completion(tok, example["prompt"], example["rejected"])
            k = min(len(p), len(p2))
            comps = [p[k:] + c, p2[k:] + r]
            prompt = p[:k]
        elif kind == "sft":
            prompt, c = split_prompt_completion(tok, example["prompt"], example["completion"])
            comps = [c]
        else:
            prompt, c = split_prompt_completion(tok, example["prompt"], example["completion"])
            other = ds[(idx + 1) % n]["completion"] if n > 1 else example["completion"]
            _, mismatched = split_prompt_completion(tok, example["prompt"], other)
            comps = [c, mismatched]
        prompt, comps = _truncate(prompt, comps, max_prompt_length, max_completion_length)
        out: dict[str, Any] = {
            "prompt_ids": prompt,
            "completion_ids": comps,
            "length": len(prompt) + sum(len(x) for x in comps),
        }
        if kind == "unpaired":
            out["label"] = bool(example["label"])
        return out

    keep = {"label"} if kind == "unpaired" else set()
    return ds.map(
        row,
        with_indices=True,
        remove_columns=[c for c in ds.column_names if c not in keep],
        desc=f"tokenising {kind} data",
    )
