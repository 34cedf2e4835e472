"""GRPO step time: prefshift's online loop vs TRL's GRPOTrainer, alternating in one run.

Fixed benchmark setting (../shared/benchmarks.md): Llama-style model built from config (vocab 2048,
hidden 256, intermediate 1024, 4 layers, 4 heads, ≈5.3M parameters), 64-token prompts. One step is one
rollout batch and one optimizer update: ``--prompts`` prompts × G = ``--generations`` sampled responses of
up to 32 new tokens (temperature 1), a cheap Python reward, group-normalised advantages, one
forward/backward on the clipped surrogate, AdamW at lr 1e-6 (the weights barely move, so every contender
keeps sampling full-length responses from a near-uniform model). Both sides use the same β (``--beta``,
default 0 = TRL's default: no reference model in TRL; prefshift still runs the reference forward, because
it always logs KL to the reference) and the same precision.

Contenders (each trains ``--steps`` steps from the same initial weights per round; rounds alternate):
* prefshift — ``OnlineTrainer`` at its defaults (bf16 autocast where the CPU has native bf16, as TRL);
* TRL defaults — ``GRPOConfig`` with only ``use_cpu=True`` plus the shared workload (batch = prompts × G,
  G, max completion length, lr, β): gradient checkpointing on, sampling with ``model.generate``;
* TRL tuned — the same without gradient checkpointing (pointless on a model this small).

The statistic is the median step time after two warm-up steps. Prints ratios (>1: prefshift faster);
the last line is ``speedup_vs_trl=<x>`` against TRL's defaults.

Run: python benchmarks/bench_online.py [--rounds 2] [--steps 6] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import tempfile
import warnings

import datasets
from common import WORDS, StepTimer, make_model, make_tokenizer

from prefshift.allocator import keep_freed_memory
from prefshift.training.online import OnlineConfig, OnlineTrainer
from prefshift.training.run import resolve_precision

PROMPT, NEW_TOKENS, LR = 64, 32, 1e-6


def make_prompts(n: int) -> list[str]:
    """Prompts of 63 words (+BOS = 64 tokens)."""
    r = random.Random(0)
    words = WORDS
    return [" ".join(r.choices(words, k=PROMPT - 1)) for _ in range(n)]


def reward(texts: list[str]) -> list[float]:
    """Share of distinct words: cheap, so the step time is the trainers' own."""
    return [len(set(t.split())) / NEW_TOKENS for t in texts]


def run_prefshift(
    model, tok, prompts: list[str], steps: int, group: int, per_step: int, beta: float
) -> list[float]:
    cfg = OnlineConfig(
        algorithm="grpo",
        num_generations=group,
        prompts_per_step=per_step,
        steps=steps,
        learning_rate=LR,
        kl_beta=beta,
        max_new_tokens=NEW_TOKENS,
    )
    trainer = OnlineTrainer(model, tok, cfg, lambda rows, texts: reward(list(texts)))
    history = trainer.train([{"prompt": p} for p in prompts], progress=False)
    print(
        f"  prefshift: mean response length {statistics.mean(h['length'] for h in history):.1f} tokens, "
        f"per step: sampling {statistics.median(h['sample_s'] for h in history[2:]):.3f}s, reward + reference "
        f"{statistics.median(h['step_s'] - h['sample_s'] - h['update_s'] for h in history[2:]):.3f}s, "
        f"forward/backward + AdamW {statistics.median(h['update_s'] for h in history[2:]):.3f}s"
    )
    return [h["step_s"] for h in history]


def run_trl(
    path: str, tok, prompts: list[str], steps: int, group: int, per_step: int, beta: float, tuned: bool
) -> list[float]:
    """TRL gets the model as a path, as a new user gives it (with β > 0 it loads its reference from there)."""
    import trl

    args = trl.GRPOConfig(
        output_dir="/tmp/bench-grpo-trl",
        use_cpu=True,
        per_device_train_batch_size=per_step * group,
        num_generations=group,
        max_completion_length=NEW_TOKENS,
        learning_rate=LR,
        beta=beta,
        max_steps=steps,
        report_to=[],
        save_strategy="no",
        logging_steps=1000,
        disable_tqdm=True,
        **({"gradient_checkpointing": False} if tuned else {}),
    )
    timer = StepTimer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = trl.GRPOTrainer(
            model=path,
            reward_funcs=lambda completions, **kw: reward(completions),
            args=args,
            train_dataset=datasets.Dataset.from_list([{"prompt": p} for p in prompts]),
            processing_class=tok,
            callbacks=[timer],
        )
        t.train()
    return timer.times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6, help="steps per contender per round (2 are warm-up)")
    ap.add_argument("--generations", type=int, default=8, help="G, responses per prompt")
    ap.add_argument("--prompts", type=int, default=4, help="prompts per step")
    ap.add_argument("--beta", type=float, default=0.0, help="KL coefficient, both sides (TRL default 0)")
    ap.add_argument("--quick", action="store_true", help="one round, no tuned-TRL line")
    args = ap.parse_args()
    keep_freed_memory()  # process-wide: every contender runs under the same allocator settings
    rounds = 1 if args.quick else args.rounds
    tok, base = make_tokenizer(), make_model()
    workdir = tempfile.TemporaryDirectory(prefix="bench-online-")
    path = workdir.name
    base.save_pretrained(path)
    tok.save_pretrained(path)
    prompts = make_prompts(args.prompts * args.steps)
    work = (args.steps, args.generations, args.prompts, args.beta)
    contenders = {
        "prefshift": lambda m: run_prefshift(m, tok, prompts, *work),
        "trl-defaults": lambda m: run_trl(path, tok, prompts, *work, tuned=False),
    }
    if not args.quick:
        contenders["trl-tuned"] = lambda m: run_trl(path, tok, prompts, *work, tuned=True)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(rounds):
        for name, fn in contenders.items():
            steps = fn(copy.deepcopy(base))
            times[name] += steps[2:]
            print(f"round {r + 1} {name:13s} median step {statistics.median(steps[2:]):.3f}s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    precision = resolve_precision("auto")
    print(
        f"\nGRPO, {args.prompts} prompts x G={args.generations} per step, 64-token prompts, {NEW_TOKENS} new "
        f"tokens, beta={args.beta}, ≈5.3M-param Llama, {precision} (both); ratios >1 mean prefshift is faster"
    )
    print(
        f"prefshift steps/s = {1 / med['prefshift']:.3f}, TRL defaults steps/s = {1 / med['trl-defaults']:.3f}"
    )
    if "trl-tuned" in med:
        print(f"speedup_vs_trl_tuned={med['trl-tuned'] / med['prefshift']:.2f}  (no gradient checkpointing)")
    workdir.cleanup()
    print(f"speedup_vs_trl={med['trl-defaults'] / med['prefshift']:.2f}")


if __name__ == "__main__":
    main()
