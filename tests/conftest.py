"""Shared fixtures: a tiny word-level tokenizer and tiny Llama models built from config (no downloads)."""

from __future__ import annotations

import random

import datasets
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = [f"w{i}" for i in range(60)]


def make_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def make_model(seed: int = 0, vocab_size: int = 64) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(cfg)


def make_pairs(n: int, seed: int = 0) -> datasets.Dataset:
    """Random paired data with prompts and completions of varied lengths (so padding matters)."""
    r = random.Random(seed)
    rows = [
        {
            "prompt": " ".join(r.choices(WORDS, k=r.randint(3, 9))),
            "chosen": " " + " ".join(r.choices(WORDS, k=r.randint(1, 7))),
            "rejected": " " + " ".join(r.choices(WORDS, k=r.randint(1, 7))),
        }
        for _ in range(n)
    ]
    return datasets.Dataset.from_list(rows)


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    return make_tokenizer()


@pytest.fixture(scope="session")
def quick_world(tmp_path_factory):
    """The quick synthetic world, built once per test session (it is what CI and the main command use)."""
    from prefshift.world.build import build_world

    return build_world("quick", tmp_path_factory.mktemp("world") / "quick")
