"""New tokens/s of prefshift's transformers engine vs Hugging Face ``generate``.

Fixed benchmark model: ``LlamaConfig(vocab_size=2048, hidden_size=256, intermediate_size=1024,
num_hidden_layers=4, num_attention_heads=4)`` (~5.3M params, random init), 64-token prompts,
32 new tokens, temperature 1.0, no top-k / top-p. Cases: 64 prompts x 1 sample, and 8 prompts x
16 samples (HF: ``num_return_sequences=16``).

Contenders, all with the same model, precision and sampling settings:
* ``prefshift+compile``: the engine with its compiled decode step (``compile=True``; in a study
  ``execution.compile_sampling: true``, in online RL ``compile_sampling: true``), the engine as it
  runs in generation-bound work, where sampling repeats the same shapes for minutes. Its one-time
  compilation happens in the warm-up call, excluded from the medians and printed as
  ``compile_warmup_s`` (a case's first call: compilation of what its shapes need, plus the call).
* ``prefshift``: the same engine in eager mode, the default of a study, which pays no compilation
  and is the faster choice for short runs (the quick study samples for about 30 s in all).
* ``hf``: ``model.generate`` under the same precision, as a user runs it on the policy being
  tuned: fp32 weights, bf16 through ``torch.autocast``.
* ``hf_tuned``: ``generate`` as an expert would tune it on a CPU: a copy of the model in the
  precision itself (bf16 weights, no autocast; on the AMD EPYC 0.45 against 0.52 s per batch-64
  call), a static KV cache (``cache_implementation="static"``) and the forward compiled by
  ``generate``'s own automatic compilation (``CompileConfig``, which transformers applies on GPUs
  only unless its ``_compile_all_devices`` flag is set; a further 0.45 -> 0.42 s).

EOS is removed from the model's generation config so that every contender always generates all
32 tokens. Contenders alternate within each repetition (the order flips every repetition) because
other jobs share the CPU; the median of the repetitions after a warm-up is reported, and the ratio
is what to compare across runs.

Output: one line per case and precision; then, in the default precision,
``speedup_vs_hf_tuned_n16`` and ``speedup_vs_hf_tuned`` (compiled engine against ``hf_tuned``),
``speedup_vs_hf_eager_n16`` and ``speedup_vs_hf_eager`` (eager engine against ``hf``),
``speedup_vs_hf_n16`` (compiled engine, 16-samples case) and, last, ``speedup_vs_hf`` (compiled
engine, batch 64).

Usage: python benchmarks/bench_generate.py [--quick] [--reps N] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
from common import make_model
from transformers import CompileConfig, LlamaForCausalLM

from prefshift.allocator import keep_freed_memory
from prefshift.generation import SamplingParams, TransformersSampler
from prefshift.generation.engine import resolve_precision

PROMPT_LEN = 64
NEW_TOKENS = 32
CASES = {"batch64": (64, 1), "n16": (8, 16)}  # name -> (prompts, samples per prompt)


def build_model() -> LlamaForCausalLM:
    """The fixed benchmark model, random init, with EOS disabled for both contenders."""
    model = make_model().eval()
    model.generation_config.eos_token_id = None
    return model


def tuned_copy(model: LlamaForCausalLM, precision: str) -> LlamaForCausalLM:
    """The model for ``hf_tuned``: a copy with weights in ``precision`` itself."""
    return copy.deepcopy(model).to(torch.bfloat16 if precision == "bf16" else torch.float32)


def hf_runner(
    model: LlamaForCausalLM, prompts: torch.Tensor, n: int, precision: str, tuned: bool = False
) -> Callable[[], None]:
    """HF ``generate`` with pure ancestral sampling at temperature 1; ``tuned``: ``model`` is the
    copy of :func:`tuned_copy`, run with a static cache and ``generate``'s compilation."""
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" and not tuned else nullcontext()
    options = {}
    if tuned:
        compile_config = CompileConfig(mode="default")  # "reduce-overhead" is CUDA graphs
        compile_config._compile_all_devices = True
        options = {"cache_implementation": "static", "compile_config": compile_config}

    def run() -> None:
        with torch.no_grad(), autocast:
            model.generate(
                prompts,
                attention_mask=torch.ones_like(prompts),
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=NEW_TOKENS,
                num_return_sequences=n,
                pad_token_id=0,
                **options,
            )

    return run


def prefshift_runner(sampler: TransformersSampler, prompts: torch.Tensor, n: int) -> Callable[[], None]:
    """prefshift's engine with the same sampling setup."""
    ids = prompts.tolist()
    params = SamplingParams(n=n, temperature=1.0, max_new_tokens=NEW_TOKENS, seed=0)

    def run() -> None:
        out = sampler.generate(ids, params)
        assert all(len(s.token_ids) == NEW_TOKENS for s in out)

    return run


def time_alternating(
    runners: dict[str, Callable[[], None]], reps: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per call of each runner (runners alternate, order flipping every
    repetition), and the seconds of each runner's warm-up call (allocator, oneDNN, compilation)."""
    warmup = {}
    for name, run in runners.items():
        start = time.perf_counter()
        run()
        warmup[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}, warmup


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few repetitions, default precision only")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per contender")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (1 is steadier on a shared CPU)"
    )
    args = parser.parse_args()
    keep_freed_memory()  # process-wide: every contender runs under the same allocator settings
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = args.reps or (3 if args.quick else 9)

    model = build_model()
    default_precision, _ = resolve_precision("auto", model)
    precisions = (
        [default_precision] if args.quick else list(dict.fromkeys([default_precision, "bf16", "fp32"]))
    )
    generator = torch.Generator().manual_seed(1)
    speedups: dict[tuple[str, str, str], float] = {}
    eager, compiled = "prefshift", "prefshift+compile"
    print(f"threads={torch.get_num_threads()} default_precision={default_precision} reps={reps}")
    for precision in precisions:
        tuned = tuned_copy(model, precision)
        samplers = {
            eager: TransformersSampler(model, precision=precision, compile=False),
            compiled: TransformersSampler(model, precision=precision, compile=True),
        }
        for case, (num_prompts, n) in CASES.items():
            prompts = torch.randint(
                3, model.config.vocab_size, (num_prompts, PROMPT_LEN), generator=generator
            )
            runners = {name: prefshift_runner(s, prompts, n) for name, s in samplers.items()}
            runners["hf"] = hf_runner(model, prompts, n, precision)
            runners["hf_tuned"] = hf_runner(tuned, prompts, n, precision, tuned=True)
            medians, warmup = time_alternating(runners, reps)
            tokens = num_prompts * n * NEW_TOKENS
            rates = " ".join(f"{name}_tok_s={tokens / t:.0f}" for name, t in medians.items())
            ratios = " ".join(
                f"ratio_{name}={medians['hf'] / t:.2f}" for name, t in medians.items() if name != "hf"
            )
            warmups = f"compile_warmup_s={warmup[compiled]:.1f} hf_tuned_warmup_s={warmup['hf_tuned']:.1f}"
            print(f"case={case} precision={precision} {rates} {ratios} {warmups}", flush=True)
            for name in samplers:
                speedups[(name, case, precision)] = medians["hf"] / medians[name]
            speedups[("tuned", case, precision)] = medians["hf_tuned"] / medians[compiled]
    print(f"speedup_vs_hf_tuned_n16={speedups[('tuned', 'n16', default_precision)]:.2f}")
    print(f"speedup_vs_hf_tuned={speedups[('tuned', 'batch64', default_precision)]:.2f}")
    print(f"speedup_vs_hf_eager_n16={speedups[(eager, 'n16', default_precision)]:.2f}")
    print(f"speedup_vs_hf_eager={speedups[(eager, 'batch64', default_precision)]:.2f}")
    print(f"speedup_vs_hf_n16={speedups[(compiled, 'n16', default_precision)]:.2f}")
    print(f"speedup_vs_hf={speedups[(compiled, 'batch64', default_precision)]:.2f}")


if __name__ == "__main__":
    main()
