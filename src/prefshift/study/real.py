"""Real models and datasets in place of the synthetic world (``data:`` in a study config).

A real-data study materialises its splits in the synthetic world's layout (``data/<domain>/<split>.jsonl``
with ``id, domain, prompt, reference, completion``), so every later stage — SFT, pairs, preference
cells, evaluation, the report — runs unchanged. What the synthetic world knows and real data does not
is replaced explicitly:

* the gold reward → the configured judge (a reward model, or an LLM judge's pointwise scores): win
  rates against the dataset reference compare judge scores, and the judge is recorded in the results;
* the simulated annotators' source pairs → the dataset's own preference pairs (``data.source.pairs``);
* the oracle teacher → a teacher model (``data.teacher``) sampling target outputs through the engine.

Prompts and completions are rendered for the base model's tokenizer (its chat template when it has one,
``prefshift.data.adapters.templates``), so the same rows feed training and sampling.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from prefshift.data.adapters import load_prompts, load_sft, render_completion
from prefshift.runinfo import atomic_write_json
from prefshift.study import data as sdata

Scorer = Callable[[Sequence[dict[str, Any]], Sequence[str]], list[float]]


def materialise(cfg, out: Path) -> None:
    """Write the splits of every domain, rendered for ``cfg.data.model``'s tokenizer, under ``out/data``."""
    data = cfg.data
    tok = AutoTokenizer.from_pretrained(data.model)
    splits: dict[str, dict[str, list[dict[str, Any]]]] = {
        data.source_name: {
            "train": [
                {**row, "reference": row["completion"].strip()}
                for row in load_sft(data.source.sft, tok).to_list()
            ],
            "test": _prompt_rows(load_prompts(data.source.test, tok).to_list(), tok),
        }
    }
    for name, target in data.targets.items():
        splits[name] = {
            "train": _prompt_rows(load_prompts(target.train, tok).to_list(), tok),
            "test": _prompt_rows(load_prompts(target.test, tok).to_list(), tok),
        }
    for domain, by_split in splits.items():
        folder = out / "data" / domain
        folder.mkdir(parents=True, exist_ok=True)
        for split, rows in by_split.items():
            if not rows:
                raise ValueError(f"data: the {domain!r} {split} split is empty")
            lines = [json.dumps({**r, "domain": domain, "record_json": "null"}) for r in rows]
            (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    atomic_write_json(out / "sizes.json", {d: {s: len(r) for s, r in v.items()} for d, v in splits.items()})


def _prompt_rows(rows: list[dict[str, Any]], tok) -> list[dict[str, Any]]:
    return [{**r, "completion": render_completion(r["reference"], tok)} for r in rows]


def judge_scorer(cfg) -> Scorer:
    """The real-data judge as the study's pointwise scorer ``(examples, texts) -> scores``."""
    judge = cfg.data.judge
    if judge.kind == "reward_model":
        from prefshift.judging.reward_model import RewardModelJudge

        return RewardModelJudge(judge.path, append_eos=True).scorer()
    from prefshift.judging import LLMJudge, make_labeller

    return make_labeller(LLMJudge(judge.llm), seed=cfg.seeds[0])


def teacher_pairs(
    examples: Sequence[dict[str, Any]], k: int, sample: Callable[..., list[list[str]]], spec, seed: int
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Teacher generation with a teacher model: k samples per target prompt become SFT rows and pairs
    with chosen = the teacher's sample and rejected = the dataset reference (the reference study's form)."""
    texts = sample([ex["prompt"] for ex in examples], k, spec.temperature, spec.top_p, seed)
    sft, pairs = [], []
    for ex, candidates in zip(examples, texts, strict=True):
        for text in dict.fromkeys(t.strip() for t in candidates):
            if not text or text == ex["reference"].strip():
                continue
            completion = sdata.completion(text, ex)  # rendered like the reference (render_completion)
            sft.append({"prompt": ex["prompt"], "completion": completion})
            pairs.append(
                {
                    "id": ex["id"],
                    "domain": ex["domain"],
                    "prompt": ex["prompt"],
                    "chosen": completion,
                    "rejected": ex["completion"],
                }
            )
    if not pairs:
        raise ValueError("teacher generation produced no pairs (every sample was empty or equal to the reference)")
    return sft, pairs
