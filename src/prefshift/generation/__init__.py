"""Sampling from policies: one interface (``Sampler.generate(prompts, SamplingParams) -> Samples``)
for evaluation, pseudo-labelling, on-policy rounds and online RL.

Example:
    >>> sampler = get_sampler(model, tokenizer)  # vLLM for a path on a GPU box, else in-process
    >>> out = sampler.generate(["Q: 2+2?"], SamplingParams(n=4, temperature=0.7, seed=0))
    >>> [s.text for s in out.by_prompt()[0]]
"""

from prefshift.generation.api import Sampler, get_sampler
from prefshift.generation.engine import TransformersSampler, cpu_supports_bf16
from prefshift.generation.params import SamplingParams
from prefshift.generation.results import Sample, Samples

__all__ = [
    "Sample",
    "Samples",
    "Sampler",
    "SamplingParams",
    "TransformersSampler",
    "cpu_supports_bf16",
    "get_sampler",
]
