"""Reward-model judge on a tiny randomly initialised Llama sequence classifier (built from config)."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from conftest import WORDS, make_tokenizer
from transformers import LlamaConfig, LlamaForSequenceClassification

from prefshift.data.tokenize import tokenize
from prefshift.evaluation.winrate import judge_pairwise
from prefshift.judging.reward_model import RewardModelJudge
from prefshift.training.trainer import reward_scores


def make_rm(seed: int = 0, num_labels: int = 1) -> LlamaForSequenceClassification:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        num_labels=num_labels,
    )
    return LlamaForSequenceClassification(cfg)


PROMPTS = ["w1 w2 w3", "w4 w5", "w6 w7 w8 w9 w10", "w11"]
RESPONSES = ["w12 w13", "w14 w15 w16 w17 w18 w19", "w20", "w21 w22 w23"]


def test_batched_scores_equal_one_at_a_time() -> None:
    judge = RewardModelJudge(make_rm(), make_tokenizer(), batch_size=3)
    batched = judge.score(PROMPTS, RESPONSES)
    single = np.array([judge.score([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES, strict=True)])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)
    assert np.ptp(batched) > 0  # a random model still tells texts apart


def test_matches_prefshift_reward_scores_with_eos() -> None:
    """With ``append_eos`` the judge reads a prefshift-trained RM exactly as the trainer/_rm_scorer do."""
    model, tok = make_rm(1), make_tokenizer()
    judge = RewardModelJudge(model, tok, append_eos=True)
    rows = [{"prompt": p, "completion": " " + r} for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    expected = reward_scores(model, tokenize(datasets.Dataset.from_list(rows), tok, "sft"), tok.pad_token_id)
    np.testing.assert_allclose(judge.score(PROMPTS, RESPONSES), expected[:, 0], rtol=1e-4, atol=1e-5)


def test_pairwise_compare_and_scorer_agree() -> None:
    judge = RewardModelJudge(make_rm(2), make_tokenizer())
    r_a, r_b = judge.score(PROMPTS, RESPONSES), judge.score(PROMPTS, RESPONSES[::-1])
    items = list(zip(PROMPTS, RESPONSES, RESPONSES[::-1], strict=True))
    np.testing.assert_allclose(judge.pairwise(items), 1 / (1 + np.exp(-(r_a - r_b))), rtol=1e-6)
    verdicts = [judge.compare(p, a, b) for p, a, b in items]
    assert verdicts == ["first" if d > 0 else "second" for d in r_a - r_b]
    assert judge.compare("w1", "w2 w3", "w2 w3") == "tie"
    # the JudgeFn interface: order randomisation maps verdicts back to the policy's side
    outcomes = judge_pairwise(items, judge.compare, seed=0)
    assert outcomes.tolist() == [1 if d > 0 else -1 for d in r_a - r_b]
    examples = [{"prompt": p} for p in PROMPTS]
    np.testing.assert_allclose(judge.scorer()(examples, RESPONSES), r_a, rtol=1e-6)


def test_loads_from_a_saved_directory(tmp_path) -> None:
    model, tok = make_rm(3), make_tokenizer()
    model.save_pretrained(tmp_path / "rm")
    tok.save_pretrained(tmp_path / "rm")
    from_disk = RewardModelJudge(tmp_path / "rm").score(PROMPTS, RESPONSES)
    np.testing.assert_allclose(from_disk, RewardModelJudge(model, tok).score(PROMPTS, RESPONSES), rtol=1e-5)


def test_chat_template_renders_the_conversation_with_one_bos() -> None:
    tok = make_tokenizer()
    tok.chat_template = "{{ bos_token }}{% for m in messages %}{{ m['content'] }} {% endfor %}"
    judge = RewardModelJudge(make_rm(), tok)
    text = judge.render([{"role": "user", "content": "w1 w2"}], " w3")
    assert text == "<bos>w1 w2 w3 "
    assert judge._ids(text).count(tok.bos_token_id) == 1
    assert judge.render("w1 w2", "w3") == text  # a text prompt becomes the user turn


def test_truncation_keeps_both_ends() -> None:
    judge = RewardModelJudge(make_rm(), make_tokenizer(), max_length=8)
    ids = judge._ids(" ".join(WORDS[:20]))
    assert len(ids) == 8 and ids[0] == 1 and ids[-1] == make_tokenizer().convert_tokens_to_ids(WORDS[19])


def test_errors() -> None:
    tok = make_tokenizer()
    with pytest.raises(ValueError, match="num_labels=2"):
        RewardModelJudge(make_rm(num_labels=2), tok)
    tok.pad_token = tok.eos_token
    with pytest.raises(ValueError, match="append_eos needs a pad token distinct from EOS"):
        RewardModelJudge(make_rm(), tok, append_eos=True)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        RewardModelJudge(make_rm(), make_tokenizer()).score(["w1", "w2"], ["w3"])
