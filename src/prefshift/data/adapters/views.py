"""The three views of a source the study needs, as ``datasets.Dataset`` in prefshift's row formats.

* ``load_pairs``   → ``prompt, chosen, rejected`` (+ ``id, domain``): source preference pairs, TRL's
  standard format that ``data.formats``/``data.tokenize`` and the trainers read;
* ``load_sft``     → ``prompt, completion`` (+ ``id, domain``): SFT data (the preferred response);
* ``load_prompts`` → ``prompt, reference`` (+ ``id, domain``): unlabelled target prompts with the dataset
  reference that win rates compare against (``reference`` is the bare text, as in the study's rows).

Prompts and completions are rendered for ``tokenizer`` (its chat template when it has one; see
``templates``), so pass the tokenizer of the model that will be trained or evaluated.
"""

from __future__ import annotations

from typing import Literal

import datasets
from transformers import PreTrainedTokenizerBase

from prefshift.data import formats
from prefshift.data.adapters.base import AdapterError, Example, load_raw, read_examples
from prefshift.data.adapters.registry import get_adapter
from prefshift.data.adapters.spec import DataSourceSpec
from prefshift.data.adapters.templates import render_completion, render_prompt

View = Literal["pairs", "sft", "prompts"]


def read_source(spec: DataSourceSpec) -> tuple[list[Example], str]:
    """Parsed examples of ``spec`` (first ``n`` after the optional shuffle) and a name for errors."""
    adapter = get_adapter(spec.adapter)
    path = spec.path or adapter.hub_id
    split = spec.split or adapter.split
    ds = load_raw(path, split, spec.config_name or adapter.config_name, spec.data_dir)
    where = f"{path} [{split}]"
    if spec.seed is not None:
        ds = ds.shuffle(seed=spec.seed)
    if spec.n is not None and len(ds) > spec.n:
        ds = ds.select(range(spec.n))
    return read_examples(adapter, ds, where), where


def load_view(
    spec: DataSourceSpec, view: View, tokenizer: PreTrainedTokenizerBase | None = None
) -> datasets.Dataset:
    """One view of a source; pairs and SFT rows are validated by ``data.formats`` before returning."""
    adapter = get_adapter(spec.adapter)
    if view == "pairs" and not adapter.has_pairs:
        raise AdapterError(f"adapter {adapter.name!r} has no preference pairs; use view 'sft' or 'prompts'")
    examples, where = read_source(spec)
    rows = []
    for ex in examples:
        row = {
            "id": ex.id,
            "domain": ex.domain,
            "prompt": render_prompt(ex.messages, adapter.task, tokenizer),
        }
        if view == "pairs":
            assert ex.rejected is not None
            row |= {
                "chosen": render_completion(ex.chosen, tokenizer),
                "rejected": render_completion(ex.rejected, tokenizer),
            }
        elif view == "sft":
            row["completion"] = render_completion(ex.chosen, tokenizer)
        elif view == "prompts":
            row["reference"] = ex.chosen
        else:
            raise ValueError(f"unknown view {view!r}; valid: pairs, sft, prompts")
        rows.append(row)
    ds = datasets.Dataset.from_list(rows)
    kind = {"pairs": "paired", "sft": "sft"}.get(view)
    return formats.validate(ds, kind, where) if kind else ds


def load_pairs(spec: DataSourceSpec, tokenizer: PreTrainedTokenizerBase | None = None) -> datasets.Dataset:
    return load_view(spec, "pairs", tokenizer)


def load_sft(spec: DataSourceSpec, tokenizer: PreTrainedTokenizerBase | None = None) -> datasets.Dataset:
    return load_view(spec, "sft", tokenizer)


def load_prompts(spec: DataSourceSpec, tokenizer: PreTrainedTokenizerBase | None = None) -> datasets.Dataset:
    return load_view(spec, "prompts", tokenizer)
