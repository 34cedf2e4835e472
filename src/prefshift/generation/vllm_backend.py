"""vLLM sampling backend (GPU).

UNTESTED HERE: the project's test machines have no CUDA and no vLLM, so this module is written
against vLLM's public ``LLM.generate`` / ``SamplingParams`` API (per-request ``seed``,
``logprobs=0`` for the sampled token's log-prob) but never executed in CI. ``vllm`` is imported
lazily so that importing ``prefshift.generation`` never requires it.

Log-probs: vLLM's V1 engine returns raw log-probs (``logprobs_mode="raw_logprobs"``, log-softmax
of the model's logits before temperature / top-k / top-p) by default, the same convention as the
transformers engine; older V0 releases returned processed log-probs, so pin vLLM >= 0.10.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefshift.generation.params import SamplingParams
from prefshift.generation.results import Sample, Samples


def vllm_available() -> bool:
    """Whether vLLM is importable and a CUDA device is visible."""
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


class VLLMSampler:
    """Sampler backed by ``vllm.LLM``.

    Args:
        model: a local path or hub id (vLLM loads weights itself; an in-memory model cannot be used).
        tokenizer: optional tokenizer path / id, defaults to ``model``.
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"``; mapped to vLLM's ``dtype``.
        **llm_kwargs: passed to ``vllm.LLM`` (e.g. ``gpu_memory_utilization``, ``max_model_len``).
    """

    backend = "vllm"

    def __init__(
        self, model: str, tokenizer: str | None = None, *, precision: str = "auto", **llm_kwargs: Any
    ) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                "the vLLM backend needs `pip install prefshift[vllm]` and a CUDA GPU; "
                "use backend='transformers' otherwise"
            ) from exc
        dtype = {"auto": "auto", "bf16": "bfloat16", "fp32": "float32"}[precision]
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, tokenizer=tokenizer, dtype=dtype, **llm_kwargs)
        model_config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        model_dtype = str(getattr(model_config, "dtype", dtype))
        names = {"torch.bfloat16": "bf16", "torch.float16": "fp16", "torch.float32": "fp32"}
        self.precision = names.get(model_dtype, model_dtype)

    def generate(self, prompts: Sequence[str] | Sequence[Sequence[int]], params: SamplingParams) -> Samples:
        """Sample ``params.n`` continuations per prompt with one ``LLM.generate`` call."""
        vllm_params = self._vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,  # -1 means "off" in every vLLM release
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            logprobs=0 if params.return_logprobs else None,
            stop_token_ids=list(params.stop_token_ids),
            skip_special_tokens=True,
        )
        inputs: list[Any] = [
            p if isinstance(p, str) else {"prompt_token_ids": [int(t) for t in p]} for p in prompts
        ]
        outputs = self.llm.generate(inputs, vllm_params, use_tqdm=False)
        samples = []
        for i, request in enumerate(outputs):
            for j, completion in enumerate(sorted(request.outputs, key=lambda c: c.index)):
                token_ids = list(completion.token_ids)
                logprobs = None
                if params.return_logprobs:
                    logprobs = [
                        step[tok].logprob for step, tok in zip(completion.logprobs, token_ids, strict=True)
                    ]
                samples.append(
                    Sample(i, j, token_ids, completion.text, logprobs, completion.finish_reason == "stop")
                )
        return Samples(samples, len(prompts), params.n, self.precision, self.backend)
