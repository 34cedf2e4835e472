"""Rounds of preference training with static, on-policy or boundary-score-chosen data (``type: rounds``).

Read top to bottom, this is the protocol of ../shared/study-design.md "On-policy data and the stage
boundary" (after arXiv:2508.10530):

1. the world and its source SFT model (round 0's policy), as in a grid study;
2. the static pairs of every round's fresh prompts and of the held-out prompts, labelled by the same
   simulated annotators as a grid study's source pairs;
3. for each objective × grid point × seed × schedule, round by round:
   a. the boundary score of the current policy: its own samples on the held-out prompts against the
      static candidates of those prompts, compared by the pairwise judge;
   b. the round's data: static pairs of the round's prompts, or on-policy pairs (``k`` samples per
      prompt from the current policy, best vs worst by the labeller); a ``boundary`` schedule takes
      ``BS.next_data``;
   c. preference training from the current policy, which is also the round's reference model;
   d. the standard evaluation (win rate in and out of domain, diversity, KL from the SFT model, length).
4. the per-round table (win rate, gain over the previous round, BS, effectiveness ratio, the BS
   measurement's cost in training epochs), the usual result tables and the report.

Every step is a content-addressed stage keyed by the policy it starts from, so schedules that share a
prefix (static→static and static→on_policy share round 1) share its stages.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from prefshift.data.synthetic.annotators import BradleyTerryAnnotator, build_preference_pairs, sigmoid
from prefshift.data.synthetic.gold import gold_reward
from prefshift.evaluation.boundary import boundary_score
from prefshift.objectives import get_objective
from prefshift.runinfo import atomic_write_json, write_manifest
from prefshift.study import data as sdata
from prefshift.study.config import schedule_name
from prefshift.study.evaluate import evaluate_cell
from prefshift.study.run import Cell, Study, _grid, _key, _records, _rm_scorer, finish, world_stage
from prefshift.world.build import load_split

Scorer = Any  # (examples, texts) -> list[float]


def run_rounds(study: Study, t_start: float) -> pd.DataFrame:
    """Run (or resume) a rounds study; returns the summary table, writes ``results/rounds.parquet``."""
    cfg, spec = study.cfg, study.cfg.rounds
    write_manifest(study.out, cfg.model_dump(), cfg.seeds[0])
    source, targets = cfg.source, list(cfg.targets or [])
    seed0 = cfg.seeds[0]

    # 1. the world
    world = world_stage(study)
    sft = world / "sft"
    train = load_split(world, source, "train")
    per_round, heldout_n = spec.prompts_per_round, spec.heldout_prompts
    needed = spec.n_rounds * per_round + heldout_n
    if needed > len(train):
        raise ValueError(
            f"rounds: n_rounds × prompts_per_round + heldout_prompts = {needed} source prompts, "
            f"but the world's {source!r} train split has {len(train)}"
        )
    chunks = [train[r * per_round : (r + 1) * per_round] for r in range(spec.n_rounds)]
    heldout = train[needed - heldout_n : needed]

    # 2. static pairs of all rounds' prompts and the held-out prompts
    pdata = cfg.preference_data.model_copy(update={"n_prompts": needed})

    def make_static(d: Path) -> None:
        pairs = sdata.source_pairs(train[:needed], pdata, study.sample_texts(sft), seed0)
        pd.DataFrame(pairs).to_parquet(d / "pairs.parquet")

    static_dir = study.stage(
        "source_pairs", {"world": world.name, "spec": pdata.model_dump(), "seed": seed0}, make_static
    )
    static = _records(static_dir / "pairs.parquet")
    static_by_round = []
    for r, chunk in enumerate(chunks):
        ids = {ex["id"] for ex in chunk}
        rows = [p for p in static if p["id"] in ids]

        def write(d: Path, rows=rows) -> None:
            pd.DataFrame(rows).to_parquet(d / "pairs.parquet")

        path = study.stage("static_round", {"pairs": static_dir.name, "round": r, "n": per_round}, write)
        static_by_round.append(path / "pairs.parquet")

    rm_dir = None
    if "reward_model" in (spec.labeller, spec.judge):
        rm_dir = study.reward_model(static_dir / "pairs.parquet", sft, seed0)

    tests = {d: load_split(world, d, "test")[: cfg.evaluation.n_prompts] for d in [source, *targets]}

    def evaluate(cell: Cell) -> Path:
        params = {
            "model": str(cell.model_dir),
            "init": str(sft),
            "eval": cfg.evaluation.model_dump(),
            "domains": list(tests),
        }
        return study.stage("eval", params, lambda d: evaluate_cell(study, cell, sft, tests, d))

    sft_cell = Cell("sft_source", "sft", "sft_source", {}, seed0, "sft_source", sft)
    cells, results = [sft_cell], {"sft_source": evaluate(sft_cell)}
    round_rows: list[dict[str, Any]] = []
    # pointwise scorers, each loaded once: the gold reward and, when asked for, the source RM
    scorers = {"gold": study.score, "reward_model": _rm_scorer(rm_dir) if rm_dir is not None else None}
    labeller = _scorer(spec.labeller, cfg, scorers, seed0)
    judge = _judge(spec.judge, cfg, scorers, seed0)

    # 3. rounds
    steps = _Steps(
        study, sft, needed, static_dir.name, static, heldout, chunks, static_by_round, labeller, judge
    )
    runs = [
        (o, hp, seed, sch)
        for o in cfg.objectives
        for hp in _grid(o)
        for seed in cfg.seeds
        for sch in spec.schedules
    ]
    for obj_spec, hp, seed, schedule in runs:
        name = schedule_name(schedule)
        policy, prev = sft, _win_rates(results["sft_source"], source, targets)
        for r in range(spec.n_rounds):
            bs = steps.boundary(policy, seed)
            kind = bs["next_data"] if schedule == "boundary" else schedule[r]
            pairs_path = steps.static_by_round[r] if kind == "static" else steps.on_policy(policy, r, seed)
            trained = steps.train(policy, pairs_path, obj_spec.name, hp, seed)
            cell = Cell(
                f"rounds/{name}/r{r + 1}/{obj_spec.name}/{_key(hp)}/s{seed}",
                obj_spec.name,
                f"{name}/r{r + 1}",
                hp,
                seed,
                "sft_source",
                trained / "model",
            )
            cells.append(cell)
            results[cell.cell_id] = evaluate(cell)
            now = _win_rates(results[cell.cell_id], source, targets)
            epoch_s = json.loads((trained / "metrics.json").read_text())["wall_seconds"] / hp["epochs"]
            round_rows.append(
                {
                    "objective": obj_spec.name,
                    "hparams": json.dumps(hp, sort_keys=True),
                    "seed": seed,
                    "schedule": name,
                    "round": r + 1,
                    "data": kind,
                    "boundary_score": bs["score"],
                    "v_on": bs["v_on"],
                    "v_off": bs["v_off"],
                    "ties": bs["ties"],
                    "win_rate": now[0],
                    "gain": now[0] - prev[0],
                    "target_win_rate": now[1],
                    "target_gain": now[1] - prev[1],
                    "pairs": len(_records(pairs_path)),
                    "bs_seconds": bs["seconds"],
                    "epoch_seconds": epoch_s,
                    "bs_cost_epochs": bs["seconds"] / epoch_s,
                    "cell_id": cell.cell_id,
                    "stage": trained.name,
                }
            )
            policy, prev = trained / "model", now

    # 4. tables and report
    rounds = pd.DataFrame(round_rows)
    res = study.out / "results"
    res.mkdir(parents=True, exist_ok=True)
    rounds.to_parquet(res / "rounds.parquet")
    _print_rounds(rounds)
    summary = finish(study, cells, results, t_start)
    return summary


@dataclass
class _Steps:
    """The cached steps of one round, shared by every schedule (keys: the policy a step starts from)."""

    study: Study
    sft: Path
    needed: int
    static_name: str
    static: list[dict[str, Any]]
    heldout: list[dict[str, Any]]
    chunks: list[list[dict[str, Any]]]
    static_by_round: list[Path]
    labeller: Scorer | None
    judge: Any

    def boundary(self, policy: Path, seed: int) -> dict[str, Any]:
        spec = self.study.cfg.rounds
        params = {
            "policy": str(policy),
            "heldout": self.needed,
            "static": self.static_name,
            "spec": {
                k: getattr(spec, k)
                for k in ("judge", "bs_samples", "temperature", "top_p", "heldout_prompts")
            },
            "seed": seed,
        }
        d = self.study.stage(
            "boundary",
            params,
            lambda d: _measure_bs(self.study, d, policy, self.heldout, self.static, self.judge, seed),
        )
        return json.loads((d / "boundary.json").read_text())

    def on_policy(self, policy: Path, r: int, seed: int) -> Path:
        cfg = self.study.cfg
        params = {
            "policy": str(policy),
            "round": r,
            "spec": {
                k: getattr(cfg.rounds, k)
                for k in ("labeller", "k", "temperature", "top_p", "prompts_per_round")
            },
            "annotator": cfg.preference_data.annotator.model_dump(),
            "seed": seed,
        }
        fn = lambda d: _on_policy_pairs(self.study, d, policy, self.chunks[r], self.labeller, seed + r)  # noqa: E731
        return self.study.stage("on_policy_pairs", params, fn) / "pairs.parquet"

    def train(self, policy: Path, pairs_path: Path, name: str, hp: dict[str, float], seed: int) -> Path:
        objective = get_objective(name)
        obj_params = {k: v for k, v in hp.items() if k not in ("learning_rate", "epochs")}

        def fit(d: Path) -> None:
            rows = _records(pairs_path)
            if not objective.paired:
                rows = sdata.as_unpaired(rows)
            self.study.train(
                "preference",
                rows,
                policy,
                d,
                objective=name,
                objective_params=obj_params,
                learning_rate=hp["learning_rate"],
                epochs=hp["epochs"],
                seed=seed,
            )

        params = {
            "init": str(policy),
            "pairs": str(pairs_path),
            "objective": name,
            "hparams": hp,
            "seed": seed,
            "training": self.study.cfg.training.model_dump(),
        }
        return self.study.stage(f"round-{name}", params, fit)


def _win_rates(eval_dir: Path, source: str, targets: list[str]) -> tuple[float, float]:
    """(source win rate, mean target win rate) of one evaluation stage."""
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    target = sum(metrics[t]["win_rate"] for t in targets) / len(targets) if targets else float("nan")
    return metrics[source]["win_rate"], target


def _measure_bs(study: Study, d: Path, policy: Path, heldout, static, judge, seed: int) -> None:
    """BS of ``policy``: each of its samples on a held-out prompt vs each static candidate of that prompt."""
    t0 = time.perf_counter()
    spec = study.cfg.rounds
    prompts = [ex["prompt"] for ex in heldout]
    samples = study.sample_texts(policy)(prompts, spec.bs_samples, spec.temperature, spec.top_p, seed)
    by_id: dict[str, list[str]] = {}
    for p in static:
        by_id.setdefault(p["id"], []).extend([p["chosen"].strip(), p["rejected"].strip()])
    examples, on, off = [], [], []
    for ex, cands in zip(heldout, samples, strict=True):
        for y_on in cands:
            for y_off in dict.fromkeys(by_id.get(ex["id"], [])):
                examples.append(ex)
                on.append(y_on.strip())
                off.append(y_off)
    if not examples:
        raise ValueError("boundary score: the held-out prompts have no static candidates")
    result = boundary_score(judge(examples, on, off))
    atomic_write_json(
        d / "boundary.json", {**result.as_dict(), "comparisons": len(on), "seconds": time.perf_counter() - t0}
    )


def _on_policy_pairs(study: Study, d: Path, policy: Path, examples, labeller, seed: int) -> None:
    """k samples per prompt from the current policy; a pair per prompt labelled by ``labeller``."""
    spec = study.cfg.rounds
    texts = study.sample_texts(policy)(
        [ex["prompt"] for ex in examples], spec.k, spec.temperature, spec.top_p, seed
    )
    if labeller is None:  # the simulated annotators of the static data, over the policy's own samples
        ann = study.cfg.preference_data.annotator
        annotator = BradleyTerryAnnotator(ann.temperature, ann.length_bias, seed=seed)
        samples = {ex["id"]: t for ex, t in zip(examples, texts, strict=True)}
        pairs = build_preference_pairs(
            examples,
            annotator,
            samples,
            pairs_per_prompt=1,
            include_reference=False,
            n_corrupted=0,
            seed=seed,
        )
        pairs = [sdata.spaced(p) for p in pairs]
    else:
        pairs = sdata.judged_pairs(examples, texts, labeller, min_margin=0.0)
    if not pairs:
        raise ValueError(
            "on-policy pairs: every prompt's samples were identical; raise rounds.k or temperature"
        )
    pd.DataFrame(pairs).to_parquet(d / "pairs.parquet")


def _scorer(kind: str, cfg, scorers: dict[str, Scorer | None], seed: int) -> Scorer | None:
    """Pointwise labeller of on-policy samples; None = the simulated pairwise annotators."""
    if kind == "annotator":
        return None
    if kind in scorers:
        return scorers[kind]
    from prefshift.judging import LLMJudge, make_labeller

    return make_labeller(LLMJudge(cfg.rounds.llm_judge), seed=seed)


def _judge(kind: str, cfg, scorers: dict[str, Scorer | None], seed: int):
    """Pairwise ranker of the boundary score: (examples, a, b) -> P(a better) per comparison."""
    if kind == "llm_judge":
        from prefshift.judging import LLMJudge

        judge = LLMJudge(cfg.rounds.llm_judge)
        return lambda examples, a, b: judge.pairwise([ex["prompt"] for ex in examples], a, b)
    if kind == "annotator":

        def annotate(examples, a, b):
            spec = cfg.preference_data.annotator
            ann = BradleyTerryAnnotator(spec.temperature, spec.length_bias, seed=seed)
            out = []
            for ex, x, y in zip(examples, a, b, strict=True):
                key = f"bs:{ex['id']}:{x}:{y}"
                out.append(
                    float(
                        ann.prefers_first(
                            gold_reward(ex["record"], x),
                            gold_reward(ex["record"], y),
                            len(x.split()),
                            len(y.split()),
                            key,
                        )
                    )
                )
            return out

        return annotate
    score = scorers[kind]

    def compare(examples, a, b):
        sa, sb = score(examples, a), score(examples, b)
        if kind == "gold":  # the oracle: a strict verdict, exact ties stay ties
            return [0.5 if x == y else float(x > y) for x, y in zip(sa, sb, strict=True)]
        return [sigmoid(x - y) for x, y in zip(sa, sb, strict=True)]

    return compare


def _print_rounds(rounds: pd.DataFrame) -> None:
    cols = [
        "objective",
        "schedule",
        "round",
        "data",
        "boundary_score",
        "win_rate",
        "gain",
        "target_win_rate",
        "target_gain",
        "bs_cost_epochs",
    ]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format
    ):
        print("\nrounds (BS = V_off / (V_off + V_on) on held-out prompts; < 0.5 → static data next):")
        print(rounds[cols].to_string(index=False))
    on = rounds.loc[rounds["data"] == "on_policy", "gain"].mean()
    st = rounds.loc[rounds["data"] == "static", "gain"].mean()
    print(
        f"effectiveness ratio (mean on-policy gain / mean static gain): {on:+.3f} / {st:+.3f} = {on / st if st else float('nan'):.2f}"
    )
