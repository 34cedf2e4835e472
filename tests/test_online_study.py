"""GRPO and PPO as objectives of a study on the quick world: they raise the reward model's score on source
prompts over the SFT model, and the study table lists them beside DPO with win rates and diversity.

CI-sized (≈1.5 min on one core after the shared world build): 24 source prompts, an RM trained on their
pairs, 30 GRPO steps at lr 5e-4 and 40 PPO steps at lr 1e-3, each of 8 prompts × 4 samples. Checked
over study seeds 0–2 on the 2026-11-23 host (then 20 GRPO steps at lr 1e-3): RM reward over SFT +0.22 /
+0.12 / +0.29 (GRPO) and +0.19 / +0.06 / +0.14 (PPO; seed 2 with 30 steps). On the 2026-12-01 host
(Intel, AMX) 20 GRPO steps at lr 1e-3 gave +0.016 (KL to the reference ≈25 nats per response: too large
a step), 30 steps gave +0.22 / +0.25 at lr 5e-4 and +0.19 / +0.32 at 3e-4, with the SDPA and the matmul
decode-attention kernels (two sampling trajectories). PPO needs more steps than GRPO here because the
Bradley–Terry RM's scores vary far more between prompts (std 0.55) than between responses to one prompt
(0.16): GRPO's group baseline removes the prompt offset at once, PPO's value model has to learn it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from prefshift.generation import SamplingParams, get_sampler
from prefshift.study.config import load_config
from prefshift.study.run import _rm_scorer, run_study
from prefshift.world.build import load_split

ONLINE = {"num_generations": 4, "prompts_per_step": 8}
STEPS = {"grpo": 30, "ppo": 40}


def online_config(world: Path, out: Path) -> Path:
    cfg = {
        "name": "online",
        "world": {"dir": str(world)},
        "objectives": [
            {"name": "dpo", "grid": {"beta": [0.1]}, "learning_rate": [5e-4]},
            {"name": "grpo", "learning_rate": [5e-4], "settings": {**ONLINE, "steps": STEPS["grpo"]}},
            {"name": "ppo", "learning_rate": [1e-3], "settings": {**ONLINE, "steps": STEPS["ppo"]}},
        ],
        "strategies": ["source_only"],
        "baselines": ["sft_source"],
        "preference_data": {"n_prompts": 24},
        "evaluation": {"n_prompts": 16, "diversity_prompts": 2, "diversity_samples": 4, "bootstrap": 50,
                       "sbert": False},
        "output_dir": str(out),
    }
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


def mean_rm_reward(model_dir: Path, rm_dir: Path, rows: list[dict]) -> float:
    """Mean RM score of 8 samples (temperature 1, fixed seed) per prompt."""
    out = get_sampler(str(model_dir), precision="auto").generate(
        [r["prompt"] for r in rows], SamplingParams(n=8, temperature=1.0, max_new_tokens=40, seed=123)
    )
    return float(np.mean(_rm_scorer(rm_dir)([r for r in rows for _ in range(8)], out.texts())))


@pytest.fixture(scope="module")
def online_run(quick_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("online") / "study"
    return out, run_study(online_config(quick_world, out))


def test_online_cells_sit_beside_offline_ones_in_the_table(online_run) -> None:
    out, summary = online_run
    assert {"sft", "dpo", "grpo", "ppo"} == set(summary.objective)
    online = summary[summary.objective.isin(["grpo", "ppo"])]
    for col in ("wr_forum", "wr_news", "gap_news", "ead_news", "kl_tok_news", "length_mean_news"):
        assert online[col].notna().all(), col
    assert (online.kl_tok_news.abs() > 1e-3).all()  # the policies moved
    # their per-step logs reach the results and the report's training-curve section
    steps = pd.read_parquet(out / "results" / "online_steps.parquet")
    assert set(steps.objective) == {"grpo", "ppo"} and {"reward_rm", "reward_gold", "kl"} <= set(steps.columns)
    assert '<section id="online">' in (out / "report" / "index.html").read_text()


def test_grpo_and_ppo_raise_the_reward_model_score_on_source_prompts(online_run, quick_world) -> None:
    out, _ = online_run
    stages = out / "stages"
    rm = next(stages.glob("reward_model-*")) / "model"
    pairs = pd.read_parquet(next(stages.glob("source_pairs-*")) / "pairs.parquet")
    prompts = set(pairs.prompt)
    rows = [ex for ex in load_split(quick_world, "forum", "train") if ex["prompt"] in prompts]
    sft = mean_rm_reward(quick_world / "sft", rm, rows)
    for name in ("grpo", "ppo"):
        run = next(stages.glob(f"online-source_only-{name}-*"))
        tuned = mean_rm_reward(run / "model", rm, rows)
        assert tuned > sft + 0.03, f"{name}: RM reward {tuned:.3f} vs SFT {sft:.3f}"
        steps = [json.loads(x) for x in (run / "steps.jsonl").read_text().splitlines()]
        assert len(steps) == STEPS[name]
        assert all("reward_gold" in s and "kl" in s for s in steps)  # gold logged beside the RM


def test_online_config_errors_name_the_field(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    for objective, needle in (
        ({"name": "grpo", "settings": {"lam": 0.9}}, "['lam'] do not apply to 'grpo'"),
        ({"name": "ppo", "settings": {"loss_aggregation": "mean"}}, "loss_aggregation: Input should be"),
        ({"name": "rloo", "grid": {"num_generation": [4]}}, "unknown grid key 'num_generation'"),
        ({"name": "grpo", "settings": {"seed": 3}}, "settings.seed is set by the study"),
        ({"name": "dpo", "settings": {"steps": 3}}, "'settings' is for online objectives"),
        ({"name": "grp"}, "'grpo'"),
    ):
        path.write_text(yaml.safe_dump({"name": "x", "objectives": [objective]}))
        with pytest.raises(ValueError) as err:
            load_config(path)
        assert "objectives.0" in str(err.value) and needle in str(err.value), str(err.value)
