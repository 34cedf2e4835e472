"""Run a whole domain-shift study from its config, as a graph of cached stages.

Read top to bottom, this is the study protocol of ../shared/study-design.md:

1. build (or reuse) the synthetic world: data, tokenizer, pretrained LM, source SFT model;
2. the SFT stage of each adaptation strategy (source, source+target mix, target, pseudo-labels);
3. the source preference pairs (SFT samples + references + corruptions, labelled by simulated
   annotators), the pseudo-labelled target pairs, and a Bradley–Terry reward model when a strategy
   needs a labeller or an online objective needs a reward;
4. one preference-training cell per strategy × objective × grid point × seed, initialised from and
   referenced to that strategy's SFT model (online objectives — GRPO, RLOO, PPO — are rewarded by the
   reward model trained on the strategy's pairs, `prefshift.study.online`);
5. evaluation of every cell and every SFT baseline on the source test set and each target test set;
6. the results tables (Parquet), the phenomena checks and the report.

Each stage's directory name is its kind plus a hash of everything it depends on (its config and the
names of the stages it reads), so a grid shares every common stage, a changed knob recomputes only what
depends on it, and a killed run recomputes nothing that finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pandas as pd

from prefshift.data.synthetic.gold import gold_reward
from prefshift.generation import SamplingParams, get_sampler
from prefshift.objectives import get_objective
from prefshift.runinfo import write_manifest
from prefshift.stages import read_events, run_stage
from prefshift.study import data as sdata
from prefshift.study import online
from prefshift.study.config import StudyConfig, load_config
from prefshift.training.run import resolve_precision, train
from prefshift.world.build import build_world, load_split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """One evaluated model: a preference-tuned cell or an SFT baseline."""

    cell_id: str
    objective: str
    strategy: str
    hparams: dict[str, float]
    seed: int
    init: str  # cell_id of the model it started from (its SFT baseline); itself for the base model
    model_dir: Path


def _key(obj: Any) -> str:
    return hashlib.blake2b(json.dumps(obj, sort_keys=True, default=str).encode(), digest_size=6).hexdigest()


def _stage_name(kind: str, params: dict[str, Any]) -> str:
    """A stage's directory name: its kind and a hash of everything it depends on."""
    return f"{kind}-{_key({'kind': kind, **params})}"


class Study:
    """State of one study run: its config, stage cache and the time spent sampling vs training."""

    def __init__(self, cfg: StudyConfig, out: Path) -> None:
        self.cfg = cfg
        self.out = out
        self.cache = Path(cfg.cache_dir) if cfg.cache_dir else out / "stages"
        self.timings: dict[str, float] = defaultdict(float)
        self._samplers: dict[str, Any] = {}
        self._judge = None
        self._pending: list[tuple[str, Any]] = []

    # -- the judge: gold reward on the synthetic world, the configured judge on real data ----------
    def score(self, examples: list[dict[str, Any]], texts: list[str]) -> list[float]:
        if self.cfg.data is None:
            return [gold_reward(ex["record"], t) for ex, t in zip(examples, texts, strict=True)]
        if self._judge is None:
            from prefshift.study.real import judge_scorer

            self._judge = judge_scorer(self.cfg)
        with self.timed("judging"):
            return self._judge(examples, list(texts))

    # -- the stage primitive ------------------------------------------------------------------
    def stage(self, kind: str, params: dict[str, Any], fn) -> Path:
        return self._run(_stage_name(kind, params), fn)

    def _run(self, name: str, fn) -> Path:
        t0 = time.perf_counter()
        path = run_stage(self.cache, name, fn, key=name)
        print(f"[stage] {name:36s} {time.perf_counter() - t0:7.1f}s", flush=True)
        return path

    def defer(self, kind: str, params: dict[str, Any], fn) -> Path:
        """Queue an independent stage (a grid cell, an evaluation) for ``run_deferred``; its path now."""
        name = _stage_name(kind, params)
        self._pending.append((name, fn))
        return self.cache / name

    def run_deferred(self) -> None:
        """Run the queued stages with the configured executor: in order here (the default), or in
        parallel on a Ray cluster, every worker writing into the same content-addressed cache."""
        pending, self._pending = self._pending, []
        todo = [(name, fn) for name, fn in dict(pending).items() if not (self.cache / name).exists()]
        spec = self.cfg.execution
        if spec.backend == "local" or len(todo) < 2:
            for name, fn in pending:
                self._run(name, fn)
            return
        from prefshift.study.executor import RayExecutor, Task

        self._samplers.clear()  # workers get a copy of the study: no loaded models in it
        self._judge = None
        executor = RayExecutor(
            spec.address,
            num_cpus=spec.num_cpus,
            num_gpus=spec.num_gpus,
            cpus_per_task=spec.cpus_per_task,
            gpus_per_task=spec.gpus_per_task,
            env_vars={"OMP_NUM_THREADS": str(spec.cpus_per_task)},
        )
        t0 = time.perf_counter()
        tasks = [Task(name, _remote_stage, (self, name, fn)) for name, fn in todo]
        try:
            for name, timings in zip((n for n, _ in todo), executor.map(tasks), strict=True):
                for key, value in timings.items():
                    self.timings[key] += value
                print(f"[stage] {name:36s} (ray)", flush=True)
        finally:
            executor.shutdown()
        print(f"[ray] {len(todo)} stages in {time.perf_counter() - t0:.1f}s", flush=True)

    @contextlib.contextmanager
    def timed(self, what: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[f"{what}_s"] += time.perf_counter() - t0

    # -- sampling: every stage that samples goes through the one engine -------------------------
    def sampler(self, model_dir: Path):
        key = str(model_dir)
        if key not in self._samplers:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self._samplers.clear()  # one model in memory at a time
            model = AutoModelForCausalLM.from_pretrained(key)
            tok = AutoTokenizer.from_pretrained(key)
            self._samplers[key] = get_sampler(
                model, tok, precision=self.cfg.training.precision, compile=self.cfg.execution.compile_sampling
            )
        return self._samplers[key]

    def sample(
        self,
        model_dir: Path,
        prompts: list[str],
        n: int,
        temperature: float,
        top_p: float,
        seed: int,
        return_logprobs: bool = False,
    ):
        params = SamplingParams(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=self.cfg.evaluation.max_new_tokens,
            seed=seed,
            return_logprobs=return_logprobs,
        )
        with self.timed("sampling"):
            return self.sampler(model_dir).generate(prompts, params)

    def sample_texts(self, model_dir: Path):
        def fn(prompts: list[str], n: int, temperature: float, top_p: float, seed: int) -> list[list[str]]:
            out = self.sample(model_dir, prompts, n, temperature, top_p, seed)
            return [[s.text or "" for s in group] for group in out.by_prompt()]

        return fn

    # -- training ---------------------------------------------------------------------------------
    def reward_model(self, pairs: Path, init: Path, seed: int) -> Path:
        """Bradley–Terry reward model on a pair set, from ``init`` (the source SFT model): the
        pseudo-judging labeller, the reward of online cells and the rounds' RM labeller/judge."""
        tcfg = self.cfg.training
        params = {"pairs": pairs.parent.name, "training": tcfg.model_dump()}

        def fit(d: Path) -> None:
            rows = _records(pairs)
            self.train("reward", rows, init, d, learning_rate=tcfg.reward_lr, epochs=tcfg.reward_epochs, seed=seed)

        return self.stage("reward_model", params, fit) / "model"

    def train(self, kind: str, rows: list[dict[str, Any]], init: Path, out: Path, **kw: Any) -> None:
        kw.setdefault("batch_size", self.cfg.training.batch_size)
        with self.timed("training"):
            train(
                kind,
                datasets.Dataset.from_list(rows),
                init,
                out,
                precision=self.cfg.training.precision,
                cache_dir=self.cache / "reference",
                **kw,
            )


def _grid(spec) -> Iterator[dict[str, float]]:
    names = sorted(spec.grid)
    for values in itertools.product(*(spec.grid[n] for n in names), spec.learning_rate, spec.epochs):
        yield {
            **dict(zip(names, values[:-2], strict=True)),
            "learning_rate": values[-2],
            "epochs": values[-1],
        }


def world_stage(study: Study) -> Path:
    """The synthetic world of the config: an already-built one (``world.dir``) or a cached stage."""
    cfg = study.cfg
    if cfg.world.dir:
        world = Path(cfg.world.dir)
        if not (world / "sft").exists():
            raise FileNotFoundError(f"world.dir {world} is not a built world (no sft/ in it)")
        return world
    params = {"profile": cfg.world.profile, "task": cfg.task, "seed": cfg.world.seed}
    return study.stage("world", params, lambda d: build_world(cfg.world.profile, d, cfg.task, cfg.world.seed))


def run_study(config: str | Path | StudyConfig, out: str | Path | None = None) -> pd.DataFrame:
    """Run (or resume) a study; returns the summary table and writes results + report."""
    t_start = time.perf_counter()
    cfg = config if isinstance(config, StudyConfig) else load_config(config)
    out_dir = Path(out or cfg.output_dir)
    study = Study(cfg, out_dir)
    write_manifest(out_dir, cfg.model_dump(), cfg.seeds[0])
    reference_log_start = len(read_events(study.cache / "reference"))
    tcfg = cfg.training
    source, targets = cfg.source, list(cfg.targets or [])
    domains = [source, *targets]

    if cfg.type == "rounds":
        from prefshift.study.rounds import run_rounds

        return run_rounds(study, t_start)

    # 1. the world: the synthetic one, or a real-data study's splits in the same layout
    if cfg.data is None:
        world = world_stage(study)
        pretrained, sft_source = world / "pretrained", world / "sft"
    else:
        from prefshift.study.real import materialise

        world = study.stage("real_data", {"data": cfg.data.model_dump()}, lambda d: materialise(cfg, d))
        pretrained, sft_source = Path(cfg.data.model), None
    src_train = load_split(world, source, "train")
    tgt_train = {t: load_split(world, t, "train") for t in targets}
    seed0 = cfg.seeds[0]
    needs = set(cfg.strategies) | set(cfg.baselines)

    # 2. SFT stages (a multi-target study adapts to all its targets at once: their train data interleaved)
    tgt = targets[0] if len(targets) == 1 else targets
    tgt_rows = sdata.interleave([tgt_train[t] for t in targets])
    sft_kw = dict(learning_rate=tcfg.sft_lr, epochs=tcfg.sft_epochs, seed=seed0, batch_size=tcfg.sft_batch_size)

    def sft_stage(name: str, rows_fn, init: Path = pretrained) -> Path:
        params = {"world": world.name, "target": tgt, "training": tcfg.model_dump(), "name": name}
        if name == "sft_pseudo":
            params["pseudo"] = cfg.pseudo_label.model_dump()
        if init != pretrained:
            params["init"] = str(init)
        return study.stage(name, params, lambda d: study.train("sft", rows_fn(), init, d, **sft_kw)) / "model"

    if sft_source is None:  # real data: the given SFT model, or SFT of the base model on source data
        sft_source = Path(cfg.data.sft_model) if cfg.data.sft_model else sft_stage(
            "sft_source", lambda: sdata.sft_rows(src_train)
        )
    sft_dirs: dict[str, Path] = {"base": pretrained, "sft_source": sft_source}

    if needs & {"mix_sft", "sft_mix"}:
        sft_dirs["sft_mix"] = sft_stage("sft_mix", lambda: sdata.mix_rows(src_train, tgt_rows, seed0))
    if needs & {"target_sft", "sft_target", "sequential_sft", "sft_sequential"}:
        sft_dirs["sft_target"] = sft_stage("sft_target", lambda: sdata.sft_rows(tgt_rows))
    if needs & {"sequential_sft", "sft_sequential"}:
        # two SFT stages in the order of training.sft_order (the reference study found target → source
        # better than source → target); the first stage is the target-SFT (or source-SFT) model itself
        if tcfg.sft_order == "target_source":
            first, rows = sft_dirs["sft_target"], lambda: sdata.sft_rows(src_train)
        else:
            first, rows = sft_source, lambda: sdata.sft_rows(tgt_rows)
        sft_dirs["sft_sequential"] = sft_stage("sft_sequential", rows, init=first)
    pseudo_dir = None
    if needs & {"pseudo_label", "sft_pseudo"}:
        params = {"world": world.name, "target": tgt, "pseudo": cfg.pseudo_label.model_dump(), "seed": seed0}

        def make_pseudo(d: Path) -> None:
            spec = cfg.pseudo_label
            if cfg.data is not None:  # a teacher model writes the target outputs
                from prefshift.study.real import teacher_pairs

                examples = sdata.pseudo_share(tgt_rows, spec.share)
                teacher = study.sample_texts(Path(cfg.data.teacher))
                sft_rows, pairs = teacher_pairs(examples, spec.k, teacher, spec, seed0)
            else:
                sample = study.sample_texts(sft_source) if spec.rejected == "student" else None
                sft_rows, pairs = sdata.teacher_generation(tgt_rows, spec, seed0, sample)
            pd.DataFrame(sft_rows).to_parquet(d / "sft.parquet")
            pd.DataFrame(pairs).to_parquet(d / "pairs.parquet")

        pseudo_dir = study.stage("pseudo_generation", params, make_pseudo)
        sft_dirs["sft_pseudo"] = sft_stage(
            "sft_pseudo", lambda: pd.read_parquet(pseudo_dir / "sft.parquet").to_dict("records")
        )

    # 3. preference data
    pref_params = {"world": world.name, "spec": cfg.preference_data.model_dump(), "seed": seed0}

    def make_source_pairs(d: Path) -> None:
        if cfg.data is not None:  # the dataset's own preference pairs
            from transformers import AutoTokenizer

            from prefshift.data.adapters import load_pairs

            pairs = load_pairs(cfg.data.source.pairs, AutoTokenizer.from_pretrained(cfg.data.model)).to_list()
        else:
            examples = src_train[: cfg.preference_data.n_prompts]
            pairs = sdata.source_pairs(examples, cfg.preference_data, study.sample_texts(sft_source), seed0)
        pd.DataFrame(pairs).to_parquet(d / "pairs.parquet")

    source_pairs_dir = study.stage("source_pairs", pref_params, make_source_pairs)
    pair_sets: dict[str, Path] = {"source": source_pairs_dir / "pairs.parquet"}
    if pseudo_dir is not None:
        pair_sets["pseudo"] = pseudo_dir / "pairs.parquet"

    if "pseudo_judge" in cfg.strategies:
        labeller = cfg.pseudo_label.labeller
        scorer_dir = study.reward_model(pair_sets["source"], sft_source, seed0) if labeller == "reward_model" else None

        def make_judged(d: Path) -> None:
            if labeller == "llm_judge":
                from prefshift.judging import LLMJudge, make_labeller

                score = make_labeller(LLMJudge(cfg.pseudo_label.judge), seed=seed0)
            else:
                score = study.score if scorer_dir is None else _rm_scorer(scorer_dir)
            pairs = sdata.teacher_judging(
                tgt_rows, cfg.pseudo_label, study.sample_texts(sft_source), score, seed0
            )
            pd.DataFrame(pairs).to_parquet(d / "pairs.parquet")

        judged = study.stage(
            "pseudo_judging",
            {
                "world": world.name,
                "target": tgt,
                "pseudo": cfg.pseudo_label.model_dump(),
                "scorer": str(scorer_dir),
            },
            make_judged,
        )
        pair_sets["judged"] = judged / "pairs.parquet"

    strategy_plan = {
        "source_only": ("sft_source", "source"),
        "direct": ("base", "source"),
        "mix_sft": ("sft_mix", "source"),
        "target_sft": ("sft_target", "source"),
        "sequential_sft": ("sft_sequential", "source"),
        "pseudo_label": ("sft_pseudo", "pseudo"),
        "pseudo_judge": ("sft_source", "judged"),
    }

    # 4. preference cells
    train_examples = [*src_train, *itertools.chain.from_iterable(tgt_train.values())]
    cells: list[Cell] = []
    for name in sorted(set(cfg.baselines) | {strategy_plan[s][0] for s in cfg.strategies}):
        objective = "base" if name == "base" else "sft"
        cells.append(Cell(name, objective, name, {}, seed0, name, sft_dirs[name]))
    for strategy in cfg.strategies:
        init_name, pair_name = strategy_plan[strategy]
        for spec, seed in itertools.product(cfg.objectives, cfg.seeds):
            if spec.name in online.ONLINE_OBJECTIVES:
                # the reward-model branch: init = the strategy's SFT model, reward = an RM on its pairs
                rm = study.reward_model(pair_sets[pair_name], sft_source, seed0)
                rows = online.prompt_rows(_records(pair_sets[pair_name]), train_examples)
                for hp in _grid(spec):
                    config = online.online_config(
                        spec.name,
                        spec.settings,
                        hp,
                        seed=seed,
                        precision=tcfg.precision,
                        n_prompts=len(rows),
                        max_new_tokens=cfg.evaluation.max_new_tokens,
                    )
                    params = {
                        "init": str(sft_dirs[init_name]),
                        "pairs": str(pair_sets[pair_name]),
                        "reward_model": str(rm),
                        "online": config.model_dump(),
                    }

                    def fit_online(d: Path, config=config, init=sft_dirs[init_name], rows=rows, rm=rm) -> None:
                        with study.timed("training"):
                            online.train_cell(d, rows, init, rm, _rm_scorer(rm), study.score, config)

                    path = study.defer(f"online-{strategy}-{spec.name}", params, fit_online)
                    cell_id = f"{strategy}/{spec.name}/{_key({**spec.settings, **hp})}/s{seed}"
                    cells.append(Cell(cell_id, spec.name, strategy, hp, seed, init_name, path / "model"))
                continue
            objective = get_objective(spec.name)
            for hp in _grid(spec):
                obj_params = {k: v for k, v in hp.items() if k not in ("learning_rate", "epochs")}
                params = {
                    "init": str(sft_dirs[init_name]),
                    "pairs": str(pair_sets[pair_name]),
                    "objective": spec.name,
                    "hparams": hp,
                    "seed": seed,
                    "training": tcfg.model_dump(),
                }
                rows_path = pair_sets[pair_name]

                def fit(
                    d: Path,
                    rows_path=rows_path,
                    objective=objective,
                    hp=hp,
                    obj_params=obj_params,
                    seed=seed,
                    init=sft_dirs[init_name],
                ) -> None:
                    rows = _records(rows_path)
                    if not objective.paired:
                        rows = sdata.as_unpaired(rows)
                    study.train(
                        "preference",
                        rows,
                        init,
                        d,
                        objective=objective.name,
                        objective_params=obj_params,
                        learning_rate=hp["learning_rate"],
                        epochs=hp["epochs"],
                        seed=seed,
                    )

                path = study.defer(f"pref-{strategy}-{spec.name}", params, fit)
                cell_id = f"{strategy}/{spec.name}/{_key(hp)}/s{seed}"
                cells.append(Cell(cell_id, spec.name, strategy, hp, seed, init_name, path / "model"))

    study.run_deferred()

    # 5. evaluation
    from prefshift.study.evaluate import evaluate_cell

    eval_spec = cfg.evaluation
    tests = {d: load_split(world, d, "test")[: eval_spec.n_prompts] for d in domains}
    results: dict[str, Path] = {}
    for cell in cells:
        params = {
            "model": str(cell.model_dir),
            "init": str(sft_dirs.get(cell.init, cell.model_dir)),
            "eval": eval_spec.model_dump(),
            "domains": domains,
        }
        results[cell.cell_id] = study.defer(
            "eval",
            params,
            lambda d, cell=cell: evaluate_cell(
                study, cell, sft_dirs.get(cell.init, cell.model_dir), tests, d
            ),
        )
    study.run_deferred()

    # 6. tables, phenomena, report
    reference = read_events(study.cache / "reference")[reference_log_start:]
    study.timings["reference_logps_computed"] = sum(e["event"] == "miss" for e in reference)
    study.timings["reference_logps_reused"] = sum(e["event"] == "hit" for e in reference)

    summary = finish(study, cells, results, t_start)
    print(
        f"reference log-probs: computed {study.timings['reference_logps_computed']:.0f}×, reused "
        f"{study.timings['reference_logps_reused']:.0f}× in this run"
    )
    return summary


def finish(study: Study, cells: list[Cell], results: dict[str, Path], t_start: float) -> pd.DataFrame:
    """Results tables, phenomena and report of a finished study; prints where the time went."""
    from prefshift.study.results import write_results

    cfg = study.cfg
    study.timings["total_s"] = time.perf_counter() - t_start
    summary = write_results(
        study,
        cells,
        results,
        {"source": cfg.source, "targets": list(cfg.targets or [])},
        precision=resolve_precision(cfg.training.precision),
    )
    print(
        f"\ntime: sampling {study.timings['sampling_s']:.1f}s, training {study.timings['training_s']:.1f}s, "
        f"total {study.timings['total_s']:.1f}s (this run; cached stages cost nothing)"
    )
    return summary


def _remote_stage(study: Study, name: str, fn) -> dict[str, float]:
    """A deferred stage in a Ray worker: ``fn`` closes over this (pickled) copy of the study, whose
    sampling/training timings are returned for the driver to add up. The per-stage lock makes two
    workers that meet on one stage compute it once."""
    from prefshift.study.executor import locked_run_stage

    study.timings.clear()
    locked_run_stage(study.cache, name, fn, key=name)
    return dict(study.timings)


def _records(path: Path) -> list[dict[str, Any]]:
    return pd.read_parquet(path).to_dict("records")


def _rm_scorer(model_dir: Path):
    """Score (prompt, response) pairs with a Bradley–Terry reward model trained by prefshift."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from prefshift.data.tokenize import tokenize
    from prefshift.training.trainer import reward_scores

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    tok = AutoTokenizer.from_pretrained(str(model_dir))

    def score(examples: list[dict[str, Any]], texts: list[str]) -> list[float]:
        rows = [
            {"prompt": ex["prompt"], "completion": sdata.completion(t)}
            for ex, t in zip(examples, texts, strict=True)
        ]
        ds = tokenize(datasets.Dataset.from_list(rows), tok, "sft")
        return reward_scores(model, ds, tok.pad_token_id)[:, 0].tolist()

    return score
