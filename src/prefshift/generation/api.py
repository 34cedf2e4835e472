"""The one sampling interface used by evaluation, pseudo-labelling, on-policy rounds and online RL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from transformers import PreTrainedModel

from prefshift.generation.engine import Precision, TransformersSampler
from prefshift.generation.params import SamplingParams
from prefshift.generation.results import Samples
from prefshift.generation.vllm_backend import VLLMSampler, vllm_available

Backend = Literal["auto", "transformers", "vllm"]


@runtime_checkable
class Sampler(Protocol):
    """Anything that turns prompts into ``Samples``; every stage depends on this only."""

    backend: str
    precision: str

    def generate(self, prompts: Sequence[str] | Sequence[Sequence[int]], params: SamplingParams) -> Samples:
        """Sample ``params.n`` continuations for each prompt."""
        ...


def get_sampler(
    model: PreTrainedModel | str,
    tokenizer: Any | None = None,
    backend: Backend = "auto",
    precision: Precision = "auto",
    **kwargs: Any,
) -> Sampler:
    """Build the fastest available sampler for ``model``.

    ``backend="auto"`` picks vLLM when it is installed, CUDA is available and ``model`` is a path
    or hub id (vLLM loads its own weights, so an in-memory model being trained cannot use it);
    otherwise the in-process transformers engine.

    Args:
        model: an in-memory ``PreTrainedModel``, or a local path / hub id.
        tokenizer: tokenizer object (transformers engine) or path / id (vLLM); for a path model with
            the transformers engine, loaded from ``model`` when omitted.
        backend: ``"auto"``, ``"transformers"`` or ``"vllm"``.
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"``.
        **kwargs: backend options (``TransformersSampler`` keywords, or ``vllm.LLM`` keywords).
    """
    if backend not in ("auto", "transformers", "vllm"):
        raise ValueError(f"unknown backend {backend!r}")
    is_path = isinstance(model, str)
    if backend == "vllm" or (backend == "auto" and is_path and vllm_available()):
        if not is_path:
            raise ValueError("the vLLM backend needs a model path or hub id, not an in-memory model")
        return VLLMSampler(
            model, tokenizer if isinstance(tokenizer, str) else None, precision=precision, **kwargs
        )
    if is_path:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if tokenizer is None or isinstance(tokenizer, str):
            tokenizer = AutoTokenizer.from_pretrained(tokenizer or model)
        model = AutoModelForCausalLM.from_pretrained(model)
    return TransformersSampler(model, tokenizer, precision=precision, **kwargs)
