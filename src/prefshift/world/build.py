"""Build the synthetic world: data → tokenizer → pretrained LM → source SFT model → sanity table.

The SFT model is checked on the source dev split and trained further if it has not yet learnt the task
(see ``_extend_until_competent``).

Every artefact is saved in the standard Hugging Face layout (``save_pretrained``), so every later stage
loads it exactly like a hub model. Each step is an atomic stage directory (`prefshift.stages`): a killed
build resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefshift.data.synthetic.corrupt import random_corruption
from prefshift.data.synthetic.gold import gold_reward
from prefshift.data.synthetic.seeding import derive_seed
from prefshift.data.synthetic.tokenizer import train_tokenizer
from prefshift.data.synthetic.world import TASKS, corpus, generate_split
from prefshift.data.tokenize import tokenize
from prefshift.generation import SamplingParams, get_sampler
from prefshift.models.build import build_llama
from prefshift.runinfo import atomic_write_json, atomic_write_text, write_manifest
from prefshift.stages import run_stage
from prefshift.training.run import training_args
from prefshift.training.trainer import SFTTrainer
from prefshift.world.profiles import WorldProfile, get_profile

SPLITS = ("train", "dev", "test")


def domains(task: str) -> list[str]:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {sorted(TASKS)}")
    return [TASKS[task]["source"], *TASKS[task]["targets"]]


def load_split(world_dir: str | Path, domain: str, split: str) -> list[dict[str, Any]]:
    """Examples of one domain/split of a built world, with their latent records decoded."""
    path = Path(world_dir) / "data" / domain / f"{split}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r["record"] = json.loads(r.pop("record_json"))
    return rows


def _write_data(out: Path, task: str, profile: WorldProfile, seed: int) -> None:
    sizes = {"train": profile.n_train, "dev": profile.n_dev, "test": profile.n_test}
    for domain in domains(task):
        for split in SPLITS:
            rows = generate_split(task, domain, split, sizes[split], seed=seed)
            lines = [
                json.dumps(
                    {**{k: v for k, v in r.items() if k != "record"}, "record_json": json.dumps(r["record"])}
                )
                for r in rows
            ]
            atomic_write_text(out / domain / f"{split}.jsonl", "\n".join(lines) + "\n")


def _train(
    model,
    tok,
    rows: list[dict[str, str]],
    out: Path,
    epochs: float,
    lr: float,
    profile: WorldProfile,
    seed: int,
    history: str = "log_history.json",
):
    ds = tokenize(datasets.Dataset.from_list(rows), tok, "sft", max_completion_length=256)
    args = training_args(
        out / "checkpoints",
        learning_rate=lr,
        epochs=epochs,
        batch_size=profile.batch_size,
        seed=seed,
        logging_steps=50,
        weight_decay=0.01,
    )
    trainer = SFTTrainer(model, args, ds, tok)
    trainer.train()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    atomic_write_json(out / history, trainer.state.log_history)


def _greedy(model, tok, prompts: list[str], max_new_tokens: int) -> list[str]:
    sampler = get_sampler(model, tok, backend="transformers")
    samples = sampler.generate(
        prompts, SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    )
    return [t or "" for t in samples.texts()]


def _extend_until_competent(
    model,
    tok,
    rows: list[dict[str, str]],
    dev: list[dict[str, Any]],
    out: Path,
    profile: WorldProfile,
    seed: int,
) -> None:
    """Extend SFT until its greedy outputs reach ``sft_min_gold_fraction`` of the references' gold.

    Why: the small world models learn to copy facts from the document in a sudden transition whose
    timing depends on the seed and on numerics (thread count, CPU). With the quick profile's 10 epochs
    on one pretrained model, training seeds 0 and 2 were past it (forum test gold 0.49 and 0.67) while
    seed 1, and seed 0 on one thread, were not (-0.21 and -0.13, below a corrupted reference's 0.33): a study on such a world measures
    nothing. Extensions restart a warm-up + cosine schedule at half the learning rate (a full-rate
    restart undoes part of what was learned); one extension of 4 epochs took those two runs to 0.31
    and 0.66. A world already past the transition is left exactly as trained. The evaluations are
    recorded in ``sft_schedule.json`` next to the model.
    """
    target = profile.sft_min_gold_fraction * mean_gold(dev, [ex["reference"] for ex in dev])
    prompts = [ex["prompt"] for ex in dev]
    schedule = [{"epochs": profile.sft_epochs, "learning_rate": profile.sft_lr}]
    for extension in range(profile.sft_max_extensions + 1):
        model.eval()
        schedule[-1]["dev_gold"] = mean_gold(dev, _greedy(model, tok, prompts, profile.max_new_tokens))
        model.train()
        if schedule[-1]["dev_gold"] >= target or extension == profile.sft_max_extensions:
            break
        lr = profile.sft_lr / 2
        print(f"SFT dev gold {schedule[-1]['dev_gold']:.3f} < {target:.3f}: extending by "
              f"{profile.sft_extension_epochs:g} epochs at lr {lr:g}", flush=True)
        _train(
            model,
            tok,
            rows,
            out,
            profile.sft_extension_epochs,
            lr,
            profile,
            seed + extension + 1,
            history=f"log_history_extension{extension + 1}.json",
        )
        schedule.append({"epochs": profile.sft_extension_epochs, "learning_rate": lr})
    atomic_write_json(
        out / "sft_schedule.json",
        {"target_dev_gold": target, "reached": schedule[-1]["dev_gold"] >= target, "runs": schedule},
    )
    if schedule[-1]["dev_gold"] < target:
        print(
            f"warning: SFT dev gold {schedule[-1]['dev_gold']:.3f} is still below {target:.3f} after "
            f"{profile.sft_max_extensions} extensions; raise sft_epochs or sft_max_extensions",
            flush=True,
        )


def mean_gold(examples: list[dict[str, Any]], texts: list[str]) -> float:
    """Mean gold reward of ``texts[i]`` as a response to ``examples[i]``."""
    return sum(gold_reward(ex["record"], t) for ex, t in zip(examples, texts, strict=True)) / len(examples)


def sanity_table(world_dir: Path, task: str, max_new_tokens: int, seed: int) -> list[dict[str, Any]]:
    """Per domain: mean gold reward of the reference, the SFT model's greedy output, a corrupted reference."""
    model = AutoModelForCausalLM.from_pretrained(str(world_dir / "sft"))
    tok = AutoTokenizer.from_pretrained(str(world_dir / "sft"))
    rows = []
    for domain in domains(task):
        test = load_split(world_dir, domain, "test")
        outputs = _greedy(model, tok, [ex["prompt"] for ex in test], max_new_tokens)
        rng = random.Random(derive_seed("sanity-corruption", domain, seed))
        corrupted = [random_corruption(ex["record"], ex["reference"], rng)[1] for ex in test]

        rows.append(
            {
                "domain": domain,
                "role": "source" if domain == TASKS[task]["source"] else "target",
                "reference": mean_gold(test, [ex["reference"] for ex in test]),
                "sft_greedy": mean_gold(test, outputs),
                "corrupted_reference": mean_gold(test, corrupted),
                "sft_example": outputs[0],
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| domain | role | gold(reference) | gold(SFT greedy) | gold(corrupted reference) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['domain']} | {r['role']} | {r['reference']:.3f} | {r['sft_greedy']:.3f} | {r['corrupted_reference']:.3f} |"
        )
    return "\n".join(lines)


def build_world(
    profile: str | WorldProfile, out: str | Path, task: str = "summarisation", seed: int = 0
) -> Path:
    """Build (or resume building) the world into ``out`` and print the sanity table and wall time."""
    t0 = time.perf_counter()
    prof = get_profile(profile) if isinstance(profile, str) else profile
    out = Path(out)
    doms = domains(task)
    write_manifest(out, {"profile": prof.model_dump(), "task": task}, seed)
    torch.manual_seed(seed)

    run_stage(out, "data", lambda d: _write_data(d, task, prof, seed))

    def make_tokenizer(d: Path) -> None:
        train_tokenizer(
            corpus(seed, prof.n_pretrain_per_domain), vocab_size=None, out_dir=d, model_max_length=512
        )

    run_stage(out, "tokenizer", make_tokenizer)
    tok = AutoTokenizer.from_pretrained(str(out / "tokenizer"))

    def pretrain(d: Path) -> None:
        # corpus() alternates document, reference; pretraining sees documents only, so the models learn
        # every domain's surface form but no domain's summary style
        docs = list(itertools.islice(corpus(seed + 1, prof.n_pretrain_per_domain), 0, None, 2))
        docs = [doc for doc in docs if _task_of(doc) == task]
        model = build_llama(tok, prof.model, seed=seed)
        _train(
            model,
            tok,
            [{"prompt": "", "completion": doc} for doc in docs],
            d,
            prof.pretrain_epochs,
            prof.pretrain_lr,
            prof,
            seed,
        )

    run_stage(out, "pretrained", pretrain)

    def sft(d: Path) -> None:
        train = load_split(out, doms[0], "train")
        model = AutoModelForCausalLM.from_pretrained(str(out / "pretrained"))
        rows = [{"prompt": ex["prompt"], "completion": " " + ex["reference"]} for ex in train]
        _train(model, tok, rows, d, prof.sft_epochs, prof.sft_lr, prof, seed)
        _extend_until_competent(model, tok, rows, load_split(out, doms[0], "dev"), d, prof, seed)

    run_stage(out, "sft", sft)

    table = sanity_table(out, task, prof.max_new_tokens, seed)
    wall = time.perf_counter() - t0
    atomic_write_json(out / "sanity.json", {"rows": table, "wall_seconds": wall})
    print(format_table(table))
    print(f"\nexample SFT output ({doms[0]} test 0): {table[0]['sft_example']!r}")
    print(f"world '{prof.name}' ({task}) ready in {out} — wall time {wall:.1f}s")
    return out


def _task_of(prompt: str) -> str:
    return "qa" if prompt.startswith("question :") else "summarisation"
