"""DPO step time: prefshift vs TRL's DPOTrainer (defaults and tuned) vs a plain PyTorch floor, one run.

Fixed benchmark setting (../shared/benchmarks.md): Llama-style model built from config (vocab 2048,
hidden 256, intermediate 1024, 4 layers, 4 heads, ≈5.3M parameters), 256 pairs, 64-token prompts,
32-token responses, 16 pairs per step, lr 1e-4, β 0.1. Each contender trains one epoch (16 steps) from
the same initial weights; contenders alternate over ``--rounds`` rounds; the statistic is the median
step time after two warm-up steps of each epoch. Prints ratios, never an absolute time alone; the last
line is ``speedup_vs_trl=<x>`` (prefshift at its defaults vs TRL at its defaults).

What TRL gets: its defaults (bf16 autocast on this CPU since TRL's config turns bf16 on, gradient
checkpointing on, a reference forward every step) with only ``use_cpu=True``, and the same batch size,
learning rate, β and epoch; "tuned" adds what an expert sets (no checkpointing on a model this small,
``precompute_ref_log_probs=True``). No setting of TRL's is changed to something slower than its default.

Run: python benchmarks/bench_trainer.py [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time
import warnings

import datasets
import torch
import torch.nn.functional as F
from common import WORDS, StepTimer, make_model, make_tokenizer

from prefshift.allocator import keep_freed_memory
from prefshift.data.formats import validate
from prefshift.data.tokenize import tokenize
from prefshift.objectives import get_objective
from prefshift.training.run import training_args
from prefshift.training.trainer import PreferenceTrainer

PROMPT, RESPONSE, PAIRS, BATCH, LR, BETA = 64, 32, 256, 16, 1e-4, 0.1


def make_data(n: int) -> datasets.Dataset:
    """Prompts of 63 words (+BOS = 64 tokens), responses of 31 words (+EOS = 32 tokens)."""
    r = random.Random(0)
    words = WORDS

    def text(k: int) -> str:
        return " ".join(r.choices(words, k=k))

    return datasets.Dataset.from_list(
        [
            {
                "prompt": text(PROMPT - 1),
                "chosen": " " + text(RESPONSE - 1),
                "rejected": " " + text(RESPONSE - 1),
            }
            for _ in range(n)
        ]
    )


def run_prefshift(model, tok, raw, bf16: bool, out: str) -> list[float]:
    ds = tokenize(validate(raw, "paired"), tok, "paired")
    args = training_args(
        out,
        learning_rate=LR,
        epochs=1,
        batch_size=BATCH,
        seed=0,
        precision="bf16" if bf16 else "fp32",
        logging_steps=1000,
        disable_tqdm=True,
    )
    timer = StepTimer()
    t = PreferenceTrainer(
        model, get_objective("dpo"), args, ds, tok, objective_params={"beta": BETA}, callbacks=[timer]
    )
    t.train()
    return timer.times


def run_trl(model, tok, raw, tuned: bool, bf16: bool | None, out: str) -> list[float]:
    import trl

    kw = dict(gradient_checkpointing=False, precompute_ref_log_probs=True) if tuned else {}
    if bf16 is not None:
        kw["bf16"] = bf16
    args = trl.DPOConfig(
        output_dir=out,
        use_cpu=True,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        beta=BETA,
        num_train_epochs=1,
        report_to=[],
        save_strategy="no",
        logging_steps=1000,
        disable_tqdm=True,
        **kw,
    )
    timer = StepTimer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = trl.DPOTrainer(
            model=model,
            ref_model=copy.deepcopy(model),
            args=args,
            train_dataset=raw,
            processing_class=tok,
            callbacks=[timer],
        )
        t.train()
    return timer.times


def run_floor(model, tok, raw, bf16: bool) -> list[float]:
    """Plain PyTorch: padded chosen/rejected rows, full logits, reference precomputed, AdamW."""
    ds = tokenize(validate(raw, "paired"), tok, "paired")
    rows = []
    for ex in ds:
        for c in ex["completion_ids"]:
            rows.append((ex["prompt_ids"], c))
    ids = torch.tensor([p + c for p, c in rows])
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, PROMPT:] = True

    def logps(m, x, msk):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = m(input_ids=x).logits[:, :-1]
        lp = torch.log_softmax(logits.float(), -1).gather(-1, x[:, 1:, None]).squeeze(-1)
        return (lp * msk[:, 1:]).sum(-1)

    with torch.no_grad():
        ref = torch.cat([logps(model, ids[i : i + 64], mask[i : i + 64]) for i in range(0, len(ids), 64)])
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    times = []
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    for start in range(0, len(ds), BATCH):
        t0 = time.perf_counter()
        pairs = order[start : start + BATCH]
        idx = torch.stack([2 * pairs, 2 * pairs + 1], 1).flatten()
        lp = logps(model, ids[idx], mask[idx]).view(-1, 2)
        r = ref[idx].view(-1, 2)
        loss = -F.logsigmoid(BETA * ((lp[:, 0] - r[:, 0]) - (lp[:, 1] - r[:, 1]))).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one round, fp32 lines skipped")
    args = ap.parse_args()
    keep_freed_memory()  # process-wide: every contender runs under the same allocator settings
    rounds = 1 if args.quick else args.rounds
    tok, raw, base = make_tokenizer(), make_data(PAIRS), make_model()
    contenders = {
        "prefshift bf16": lambda m: run_prefshift(m, tok, raw, True, "/tmp/bench-pf"),
        "trl-defaults bf16": lambda m: run_trl(m, tok, raw, False, None, "/tmp/bench-trl"),
        "trl-tuned bf16": lambda m: run_trl(m, tok, raw, True, True, "/tmp/bench-trl"),
        "floor bf16": lambda m: run_floor(m, tok, raw, True),
    }
    if not args.quick:
        contenders |= {
            "prefshift fp32": lambda m: run_prefshift(m, tok, raw, False, "/tmp/bench-pf"),
            "trl-defaults fp32": lambda m: run_trl(m, tok, raw, False, False, "/tmp/bench-trl"),
            "trl-tuned fp32": lambda m: run_trl(m, tok, raw, True, False, "/tmp/bench-trl"),
            "floor fp32": lambda m: run_floor(m, tok, raw, False),
        }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(rounds):
        for name, fn in contenders.items():
            steps = fn(copy.deepcopy(base))
            times[name] += steps[2:]
            print(f"round {r + 1} {name:18s} median step {statistics.median(steps[2:]):.3f}s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("\nDPO, 16 pairs/step, 64+32 tokens, ≈5.3M-param Llama (ratios; >1 means prefshift is faster)")
    for prec in ("fp32", "bf16"):
        if f"prefshift {prec}" not in med:
            continue
        ours = med[f"prefshift {prec}"]
        print(f"[{prec}] speedup vs TRL defaults ({prec}) = {med[f'trl-defaults {prec}'] / ours:.2f}")
        print(f"[{prec}] speedup vs TRL tuned ({prec})    = {med[f'trl-tuned {prec}'] / ours:.2f}")
        print(f"[{prec}] ratio_to_floor ({prec})           = {ours / med[f'floor {prec}']:.2f}")
    print(f"speedup_vs_trl_tuned={med['trl-tuned bf16'] / med['prefshift bf16']:.2f}  (bf16 autocast, both)")
    print(f"ratio_to_floor={med['prefshift bf16'] / med['floor bf16']:.2f}  (bf16 autocast, both)")
    # TRL's default on this CPU is bf16 autocast (its config enables bf16); prefshift's default is bf16 here too
    print(f"speedup_vs_trl={med['trl-defaults bf16'] / med['prefshift bf16']:.2f}")


if __name__ == "__main__":
    main()
