"""Small Llama-style causal LMs built from a config (the synthetic world's models; no downloads)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase


class ModelSize(BaseModel):
    """Architecture knobs of a tiny Llama; defaults are the benchmark model of ../shared/benchmarks.md."""

    model_config = ConfigDict(extra="forbid")

    hidden_size: int = Field(256, gt=0)
    intermediate_size: int = Field(1024, gt=0)
    num_hidden_layers: int = Field(4, gt=0)
    num_attention_heads: int = Field(4, gt=0)
    max_position_embeddings: int = Field(512, gt=0)


def build_llama(tokenizer: PreTrainedTokenizerBase, size: ModelSize, seed: int = 0) -> LlamaForCausalLM:
    """A randomly initialised Llama whose vocabulary and special ids match ``tokenizer``."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_attention_heads,
        max_position_embeddings=size.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model
