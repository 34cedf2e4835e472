"""The online loop on a tiny model: updates move the right log-probs, the sampler sees new weights,
logs and run directories are written, bad configs and non-finite values fail clearly."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import WORDS, make_model, make_tokenizer
from pydantic import ValidationError
from transformers import LlamaForTokenClassification

from prefshift.generation import SamplingParams, get_sampler
from prefshift.training.online import OnlineConfig, OnlineTrainer, train_online
from prefshift.training.online.rollout import policy_token_logps, sample_rollout
from prefshift.training.trainer import NonFiniteLossError

ROWS = [{"prompt": " ".join(WORDS[i : i + 4])} for i in range(0, 40, 5)]


class Recording:
    """A sampler wrapper that keeps the last ``Samples`` it returned."""

    def __init__(self, sampler) -> None:
        self.inner, self.last = sampler, None
        self.backend, self.precision = sampler.backend, sampler.precision

    def generate(self, prompts, params):
        self.last = (prompts, self.inner.generate(prompts, params))
        return self.last[1]


def _logp(model, prompt_ids, tokens) -> float:
    from prefshift.training.logprobs import sequence_logps
    from prefshift.training.packing import pack

    with torch.no_grad():
        return sequence_logps(model, pack([prompt_ids], [[tokens]], 0)).logps[0, 0].item()


def test_positive_advantage_response_gains_log_probability() -> None:
    tok, model = make_tokenizer(), make_model(seed=1)
    cfg = OnlineConfig(algorithm="grpo", num_generations=2, prompts_per_step=1, steps=1, kl_beta=0.0,
                       learning_rate=1e-3, max_new_tokens=6, precision="fp32", seed=3)
    sampler = Recording(get_sampler(model, tok, precision="fp32"))
    # the first response of every group is rewarded, the second is not: A = (+a, −a)
    trainer = OnlineTrainer(model, tok, cfg, lambda rows, texts: [1.0 - i % 2 for i in range(len(texts))],
                            sampler=sampler)
    trainer.step(ROWS[:1], 0)
    prompts, samples = sampler.last
    good, bad = samples[0], samples[1]
    assert good.token_ids != bad.token_ids
    assert _logp(model, prompts[0], good.token_ids) > sum(good.logprobs) + 1e-3
    assert _logp(model, prompts[0], bad.token_ids) < sum(bad.logprobs) - 1e-3


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sampler_sees_updated_weights(precision: str) -> None:
    tok, model = make_tokenizer(), make_model(seed=2)
    cfg = OnlineConfig(algorithm="rloo", num_generations=2, prompts_per_step=2, steps=1, learning_rate=1e-2,
                       max_new_tokens=5, precision=precision)
    trainer = OnlineTrainer(model, tok, cfg, lambda rows, texts: [float(len(t)) for t in texts])
    assert trainer.sampler.model is model  # the engine runs the trained object, not a copy
    trainer.step(ROWS[:2], 0)
    # after the update, the engine's log-probs are those of the updated policy
    params = SamplingParams(n=2, max_new_tokens=5, seed=0, return_logprobs=True)
    rollout = sample_rollout(trainer.sampler, [[1, 5, 6, 7]], params)
    model.eval()
    fresh, _ = policy_token_logps(model, rollout, [0], 0, trainer._autocast)
    tol = 1e-4 if precision == "fp32" else 5e-2
    torch.testing.assert_close(fresh * rollout.mask, rollout.old_logps, atol=tol, rtol=0)
    # and weights loaded in place are what it generates from next
    other = make_model(seed=99)
    greedy = SamplingParams(n=1, temperature=0, max_new_tokens=8)
    expected = get_sampler(other, tok, precision=precision).generate([[1, 5, 6]], greedy)[0].token_ids
    assert trainer.sampler.generate([[1, 5, 6]], greedy)[0].token_ids != expected
    model.load_state_dict(other.state_dict())
    assert trainer.sampler.generate([[1, 5, 6]], greedy)[0].token_ids == expected


def test_ppo_run_writes_logs_metrics_and_model(tmp_path) -> None:
    tok, model = make_tokenizer(), make_model(seed=4)
    model.save_pretrained(tmp_path / "sft")
    tok.save_pretrained(tmp_path / "sft")
    cfg = OnlineConfig(algorithm="ppo", num_generations=2, prompts_per_step=4, minibatches=2, epochs_per_batch=2,
                       steps=2, learning_rate=1e-3, max_new_tokens=5, precision="fp32", gamma=0.99)
    metrics = train_online(
        ROWS, tmp_path / "sft", tmp_path / "run", lambda rows, texts: [t.count("w") / 5 for t in texts], cfg,
        gold_fn=lambda rows, texts: [0.5] * len(texts), progress=False,
    )
    lines = [json.loads(x) for x in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    for key in ("reward_rm", "reward_gold", "kl", "length", "entropy", "clip_fraction", "value_loss"):
        assert key in lines[0], key
    assert lines[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the first rollout is the reference itself
    assert {"reward_rm_start", "reward_rm_end", "value_loss_end", "wall_seconds"} <= set(metrics)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["objective"] == "ppo" and manifest["config"]["config"]["gamma"] == 0.99
    assert (tmp_path / "run" / "model" / "config.json").exists()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 2


def test_ppo_value_model_is_trained() -> None:
    tok, model = make_tokenizer(), make_model(seed=5)
    value = LlamaForTokenClassification(model.config.__class__(**{**model.config.to_dict(), "num_labels": 1}))
    before = value.score.weight.detach().clone()
    cfg = OnlineConfig(algorithm="ppo", num_generations=1, prompts_per_step=2, steps=1, max_new_tokens=4,
                       precision="fp32", learning_rate=1e-3)
    OnlineTrainer(model, tok, cfg, lambda r, t: [1.0] * len(t), value_model=value).train(ROWS[:2], progress=False)
    assert not torch.equal(before, value.score.weight)


def test_non_finite_reward_is_a_clear_error() -> None:
    tok, model = make_tokenizer(), make_model(seed=6)
    cfg = OnlineConfig(algorithm="grpo", num_generations=2, prompts_per_step=1, steps=1, max_new_tokens=3,
                       precision="fp32")
    trainer = OnlineTrainer(model, tok, cfg, lambda rows, texts: [float("nan")] * len(texts))
    with pytest.raises(NonFiniteLossError, match="non-finite reward .* step 0"):
        trainer.train(ROWS, progress=False)


def test_config_validation_names_fields_and_choices() -> None:
    with pytest.raises(ValidationError, match="num_generations must be >= 2"):
        OnlineConfig(algorithm="grpo", num_generations=1)
    with pytest.raises(ValidationError, match=r"\['gamma', 'lam'\] do not apply to 'grpo'"):
        OnlineConfig(algorithm="grpo", gamma=0.9, lam=0.9)
    with pytest.raises(ValidationError, match="'token_mean', 'sequence_mean' or 'constant'"):
        OnlineConfig(algorithm="rloo", loss_aggregation="mean")
    with pytest.raises(ValidationError, match="clip_eps"):
        OnlineConfig(algorithm="ppo", clip_eps=1.5)
    with pytest.raises(ValidationError, match="grup_size"):
        OnlineConfig(algorithm="ppo", grup_size=4)
    with pytest.raises(ValueError, match="ppo needs a value_model"):
        OnlineTrainer(make_model(), make_tokenizer(), OnlineConfig(algorithm="ppo"), lambda r, t: [])
