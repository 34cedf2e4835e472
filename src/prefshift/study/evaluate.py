"""Evaluation of one model on the source and target test sets (judge: ``study.score`` — the synthetic
gold reward, or a real-data study's reward model / LLM judge; the columns keep the name ``gold``).

Per domain: outputs at the evaluation temperature (greedy by default) on ``n_prompts`` test prompts,
their win rate against the dataset reference (ties excluded, ties-as-half, bootstrap CI), K samples per
prompt at temperature 1 on ``diversity_prompts`` prompts for diversity, and the KL of the model from
its SFT initialisation estimated on those same samples (they are draws from the policy, which the
estimator needs; greedy outputs are not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefshift.data.tokenize import encode
from prefshift.evaluation import (
    diversity_report,
    kl_estimate,
    length_controlled_win_rate,
    length_summary,
    win_rate,
)
from prefshift.runinfo import atomic_write_json
from prefshift.training.reference import compute_logps


def sequence_logps(model, tok, prompts: list[str], completions: list[list[int]]) -> np.ndarray:
    """log π(completion | prompt) in fp32 for token-level completions (the sampler's own token ids)."""
    rows = [
        {"prompt_ids": encode(tok, p), "completion_ids": [c], "length": len(c)}
        for p, c in zip(prompts, completions, strict=True)
    ]
    return compute_logps(
        model, datasets.Dataset.from_list(rows), tok.pad_token_id, desc="sequence log-probs"
    )[:, 0]


def evaluate_cell(study, cell, init_dir: Path, tests: dict[str, list[dict[str, Any]]], out: Path) -> None:
    spec = study.cfg.evaluation
    seed = cell.seed
    tok = AutoTokenizer.from_pretrained(str(cell.model_dir))
    vocab = len(tok)
    # loaded once per cell (not per domain): the KL needs both the policy and its SFT initialisation
    policy_model = AutoModelForCausalLM.from_pretrained(str(cell.model_dir))
    init_model = AutoModelForCausalLM.from_pretrained(str(init_dir))
    metrics: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    for domain, examples in tests.items():
        prompts = [ex["prompt"] for ex in examples]
        outs = study.sample(cell.model_dir, prompts, 1, spec.temperature, 1.0, seed)
        texts = [s.text or "" for s in outs]
        golds = np.array(study.score(examples, texts))
        ref_golds = np.array(study.score(examples, [ex["reference"] for ex in examples]))
        wr = win_rate(golds, ref_golds, rng_seed=seed, n_bootstrap=spec.bootstrap)
        lengths = [len(t.split()) for t in texts]
        m: dict[str, float] = {
            "win_rate": wr.win_rate,
            "win_rate_ci_low": wr.ci_low,
            "win_rate_ci_high": wr.ci_high,
            "win_rate_ties_half": wr.win_rate_ties_half,
            "gold_mean": float(golds.mean()),
            "rm_mean": float("nan"),
            "reference_gold_mean": float(ref_golds.mean()),
            "n_prompts": len(examples),
        }
        # length-controlled win rate (AlpacaEval-LC): the judge's preference with the length difference
        # regressed out, so a policy that wins by writing longer loses that part of its margin
        lc = length_controlled_win_rate(
            (np.sign(golds - ref_golds) + 1) / 2,
            lengths,
            [len(ex["reference"].split()) for ex in examples],
            rng_seed=seed,
            n_bootstrap=max(1, spec.bootstrap),
        )
        m.update(win_rate_lc=lc.lc_win_rate, win_rate_lc_ci_low=lc.ci_low, win_rate_lc_ci_high=lc.ci_high,
                 judge_length_coef=lc.length_coef)
        finished = [s.finished for s in outs]
        m.update({f"length_{k}": v for k, v in length_summary(lengths, finished=finished).items()})
        m["reference_length_mean"] = float(np.mean([len(ex["reference"].split()) for ex in examples]))
        for i, (ex, t, g, n, rg) in enumerate(zip(examples, texts, golds, lengths, ref_golds, strict=True)):
            rows.append(
                {
                    "cell_id": cell.cell_id,
                    "domain": domain,
                    "prompt_id": ex["id"],
                    "sample_index": 0,
                    "response": t,
                    "gold": float(g),
                    "reference_gold": float(rg),
                    "length": n,
                    "purpose": "eval",
                    "prompt_index": i,
                }
            )

        if spec.diversity_prompts:
            div_examples = examples[: spec.diversity_prompts]
            div_prompts = [ex["prompt"] for ex in div_examples]
            samples = study.sample(
                cell.model_dir, div_prompts, spec.diversity_samples, spec.diversity_temperature, 1.0, seed + 1
            )
            groups = [[s.text or "" for s in g] for g in samples.by_prompt()]
            encoder = _sbert() if spec.sbert else None
            div = diversity_report(groups, vocab_size=vocab, encoder=encoder)
            div["sbert"] = div.pop("sbert_diversity", float("nan"))
            div["nli"] = div.pop("nli_diversity", float("nan"))
            m.update(div)
            flat_prompts = [p for p in div_prompts for _ in range(spec.diversity_samples)]
            token_ids = samples.token_ids()
            with study.timed("kl"):
                policy = sequence_logps(policy_model, tok, flat_prompts, token_ids)
                ref = sequence_logps(init_model, tok, flat_prompts, token_ids)
            groups = np.repeat(np.arange(len(div_prompts)), spec.diversity_samples)
            kl = kl_estimate(policy, ref, np.array([len(t) for t in token_ids]), groups=groups)
            m.update(
                {"kl_seq": kl.kl_per_sequence, "kl_seq_se": kl.kl_per_sequence_se, "kl_tok": kl.kl_per_token}
            )
            div_scores = iter(study.score([ex for ex in div_examples for _ in range(spec.diversity_samples)],
                                          [s.text or "" for s in samples]))
            for (i, ex), group in zip(enumerate(div_examples), samples.by_prompt(), strict=True):
                for s in group:
                    text = s.text or ""
                    rows.append(
                        {
                            "cell_id": cell.cell_id,
                            "domain": domain,
                            "prompt_id": ex["id"],
                            "sample_index": s.sample_index,
                            "response": text,
                            "gold": next(div_scores),
                            "length": len(text.split()),
                            "purpose": "diversity",
                            "prompt_index": i,
                        }
                    )
        metrics[domain] = m
    atomic_write_json(out / "metrics.json", metrics)
    pd.DataFrame(rows).to_parquet(out / "samples.parquet")


_ENCODER: list[Any] = []


def _sbert():
    """The offline MiniLM sentence encoder, loaded once per process; None when it is not installed."""
    if not _ENCODER:
        try:
            from prefshift.evaluation import minilm_encoder

            _ENCODER.append(minilm_encoder())
        except (ImportError, RuntimeError, OSError):
            _ENCODER.append(None)
    return _ENCODER[0]
