"""The study config: one YAML file describes the whole domain-shift study.

Validated with pydantic so that a typo fails before any compute, with a message naming the field and
the allowed values (``extra="forbid"`` everywhere: an unknown key is an error, never silently ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prefshift.data.adapters import DataSourceSpec
from prefshift.judging import LLMJudgeConfig
from prefshift.objectives import REGISTRY
from prefshift.study.online import ONLINE_OBJECTIVES, check_online

STRATEGIES = ("source_only", "direct", "mix_sft", "target_sft", "sequential_sft", "pseudo_label", "pseudo_judge")
"""Adaptation strategies (../shared/study-design.md): SFT stage → preference stage.

source_only: D_S → D_S · direct: none (base model) → D_S · mix_sft: D_S+T → D_S · target_sft: D_T → D_S ·
sequential_sft: D_T then D_S (or D_S then D_T, ``training.sft_order``) → D_S ·
pseudo_label: D_T^synth → D_T^synth (teacher generation) · pseudo_judge: D_S → pairs of the student's own
target samples ranked by a labeller (teacher judging).
"""

SFT_BASELINES = ("base", "sft_source", "sft_mix", "sft_target", "sft_sequential", "sft_pseudo")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorldSpec(Strict):
    """The bundled synthetic world (the embedded default)."""

    profile: Literal["quick", "demo"] = "quick"
    seed: int = 0
    dir: str | None = Field(None, description="an already-built world (`prefshift world build`) to use as is")


class ObjectiveSpec(Strict):
    """One objective and its grid: every combination of ``grid`` values × learning rates × epochs is a cell.

    Online objectives (grpo, rloo, ppo) take their hyperparameters from ``prefshift.training.online``'s
    ``OnlineConfig``: numeric ones may be grid axes, any of them may be fixed in ``settings``; ``epochs``
    are passes over the prompts of the strategy's pair set (they set the step count unless ``steps`` is
    given).
    """

    name: str
    grid: dict[str, list[float]] = Field(default_factory=dict)
    learning_rate: list[float] = Field(default_factory=lambda: [5e-4])
    epochs: list[float] = Field(default_factory=lambda: [1.0])
    settings: dict[str, Any] = Field(
        default_factory=dict, description="online objectives: fixed hyperparameters (not grid axes)"
    )

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in REGISTRY and v not in ONLINE_OBJECTIVES:
            raise ValueError(f"unknown objective {v!r}; valid: {sorted([*REGISTRY, *ONLINE_OBJECTIVES])}")
        return v

    @model_validator(mode="after")
    def _grid_values(self) -> ObjectiveSpec:
        for name, values in self.grid.items():
            if not values:
                raise ValueError(f"objective {self.name!r}: grid[{name!r}] is empty")
        if self.name in ONLINE_OBJECTIVES:
            check_online(self.name, self.settings, self.grid, self.learning_rate)
            return self
        if self.settings:
            raise ValueError(f"objective {self.name!r}: 'settings' is for online objectives {list(ONLINE_OBJECTIVES)}")
        obj = REGISTRY[self.name]
        for name, values in self.grid.items():
            for v in values:
                obj.resolve({name: v})  # unknown names / out-of-range values raise with the valid choices
        return self


class AnnotatorSpec(Strict):
    """Simulated annotators: Bradley–Terry over gold reward with noise and a length bias (per word)."""

    temperature: float = Field(0.15, gt=0)
    length_bias: float = Field(0.01, ge=0)


class PreferenceDataSpec(Strict):
    """Source preference pairs: candidates = SFT samples + references + corrupted references."""

    n_prompts: int = Field(1000, gt=0)
    model_samples: int = Field(2, ge=0, description="SFT samples per prompt in the candidate pool")
    n_corrupted: int = Field(1, ge=0)
    include_reference: bool = True
    pairs_per_prompt: int = Field(1, gt=0)
    sample_temperature: float = Field(1.0, ge=0)
    annotator: AnnotatorSpec = Field(default_factory=AnnotatorSpec)


class PseudoLabelSpec(Strict):
    """Pseudo-labelling of target prompts (both forms)."""

    share: float = Field(1.0, gt=0, le=1, description="share of target train prompts that get pseudo-labels")
    k: int = Field(
        3, gt=0, description="teacher candidates (generation) or student samples (judging) per prompt"
    )
    teacher_quality: float = Field(0.8, ge=0, le=1, description="quality knob of the oracle teacher")
    rejected: Literal["reference", "student"] = "reference"
    labeller: Literal["reward_model", "gold", "llm_judge"] = Field(
        "reward_model", description="who ranks the student's samples in the judging form"
    )
    judge: LLMJudgeConfig | None = Field(None, description="OpenAI-compatible endpoint for labeller=llm_judge")
    min_margin: float = Field(
        0.0, ge=0, description="judging form: drop pairs whose score margin is below this"
    )
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)


class TrainingSpec(Strict):
    """Training budget of the SFT and reward-model stages; preference cells take theirs from the grid."""

    sft_epochs: float = Field(8.0, gt=0)
    sft_lr: float = Field(3e-3, gt=0)
    sft_batch_size: int = Field(32, gt=0)
    reward_epochs: float = Field(2.0, gt=0)
    reward_lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(16, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    sft_order: Literal["target_source", "source_target"] = Field(
        "target_source", description="order of the two SFT stages of the sequential_sft strategy"
    )


class EvaluationSpec(Strict):
    """What is measured on every cell, on the source test set and every target test set."""

    n_prompts: int = Field(100, gt=0)
    temperature: float = Field(0.0, ge=0, description="0 = greedy outputs for the win rate")
    max_new_tokens: int = Field(40, gt=0)
    diversity_prompts: int = Field(16, ge=0)
    diversity_samples: int = Field(16, ge=2)
    diversity_temperature: float = Field(1.0, gt=0)
    sbert: bool = True
    bootstrap: int = Field(1000, ge=0)


class SourceData(Strict):
    """The source domain of a real-data study: SFT data, preference pairs and a test set."""

    sft: DataSourceSpec
    pairs: DataSourceSpec
    test: DataSourceSpec


class TargetData(Strict):
    """One target domain: unlabelled train prompts (with the dataset references) and a test set."""

    train: DataSourceSpec
    test: DataSourceSpec


class JudgeSpec(Strict):
    """Who scores responses in a real-data study: a reward model (any sequence classifier with one
    output) or an LLM judge over an OpenAI-compatible endpoint (pointwise scores from its tournaments)."""

    kind: Literal["reward_model", "llm_judge"]
    path: str | None = Field(None, description="reward_model: model directory or hub id")
    llm: LLMJudgeConfig | None = Field(None, description="llm_judge: the endpoint")

    @model_validator(mode="after")
    def _needs(self) -> JudgeSpec:
        if self.kind == "reward_model" and not self.path:
            raise ValueError("data.judge.path: a reward_model judge needs the model's path or hub id")
        if self.kind == "llm_judge" and self.llm is None:
            raise ValueError("data.judge.llm: an llm_judge needs an endpoint config (base_url, model)")
        return self


class RealDataSpec(Strict):
    """A study on real models and datasets (``docs/real-study.md``) instead of the synthetic world.

    ``model`` is the pretrained LM every SFT stage starts from; ``sft_model``, when given, is used as the
    source SFT model instead of training one on ``source.sft``; ``teacher`` writes the pseudo-labels of
    the teacher-generation strategy. Domain names are the keys under which results are reported.
    """

    model: str
    sft_model: str | None = None
    teacher: str | None = Field(None, description="model that writes target pseudo-labels (pseudo_label)")
    source_name: str = "source"
    source: SourceData
    targets: dict[str, TargetData]
    judge: JudgeSpec

    @model_validator(mode="after")
    def _targets(self) -> RealDataSpec:
        if not self.targets:
            raise ValueError("data.targets: give at least one target domain")
        if self.source_name in self.targets:
            raise ValueError(f"data.targets: {self.source_name!r} is the source domain's name")
        return self


ROUND_DATA = ("static", "on_policy")


class RoundsSpec(Strict):
    """Rounds of preference training (``type: rounds``, ../shared/study-design.md "On-policy data").

    Each round trains the current policy (initialisation and reference: the previous round's policy,
    as in iterative DPO) on fresh source prompts, with the static dataset's pairs or with on-policy
    pairs (``k`` samples per prompt from the current policy, best vs worst by ``labeller``). A
    schedule is a list of ``n_rounds`` data kinds, or ``boundary``: each round's data is chosen by the
    boundary score measured on ``heldout_prompts`` prompts with the pairwise ``judge``.
    """

    n_rounds: int = Field(2, ge=1, le=10)
    schedules: list[list[Literal[ROUND_DATA]] | Literal["boundary"]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: [
            ["static", "static"],
            ["static", "on_policy"],
            ["on_policy", "static"],
            ["on_policy", "on_policy"],
            "boundary",
        ]
    )
    prompts_per_round: int = Field(300, gt=0, description="fresh source prompts per round")
    heldout_prompts: int = Field(40, gt=0, description="prompts of the boundary-score measurement")
    k: int = Field(4, ge=2, description="on-policy samples per prompt (pairs: best vs worst)")
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    labeller: Literal["annotator", "gold", "reward_model", "llm_judge"] = Field(
        "annotator", description="who labels on-policy pairs (annotator = the static data's simulated raters)"
    )
    judge: Literal["gold", "annotator", "reward_model", "llm_judge"] = Field(
        "gold", description="pairwise ranker of the boundary score"
    )
    bs_samples: int = Field(2, gt=0, description="on-policy candidates per held-out prompt for the boundary score")
    llm_judge: LLMJudgeConfig | None = Field(None, description="endpoint when labeller or judge is llm_judge")

    @model_validator(mode="after")
    def _schedules(self) -> RoundsSpec:
        if not self.schedules:
            raise ValueError("rounds.schedules: give at least one schedule")
        for s in self.schedules:
            if s != "boundary" and len(s) != self.n_rounds:
                raise ValueError(
                    f"rounds.schedules: {s} has {len(s)} entries, n_rounds is {self.n_rounds} "
                    f"(each entry one of {list(ROUND_DATA)}, or the schedule 'boundary')"
                )
        if "llm_judge" in (self.labeller, self.judge) and self.llm_judge is None:
            raise ValueError("rounds.llm_judge: labeller/judge 'llm_judge' needs an endpoint config (base_url, model)")
        return self


def schedule_name(schedule: list[str] | str) -> str:
    """'boundary' or the data kinds joined by '>' (e.g. 'static>on_policy')."""
    return schedule if isinstance(schedule, str) else ">".join(schedule)


class ExecutionSpec(Strict):
    """Where independent stages (grid cells, evaluations) run: in this process in order (``local``, the
    default) or in parallel on a Ray cluster (``ray``: a local one with ``num_cpus``/``num_gpus``, or
    ``address``), all sharing the content-addressed stage cache (which must then be on a shared disk)."""

    backend: Literal["local", "ray"] = "local"
    address: str | None = None
    num_cpus: int | None = Field(None, gt=0)
    num_gpus: int | None = Field(None, ge=0)
    cpus_per_task: int = Field(1, gt=0)
    gpus_per_task: float | None = Field(None, ge=0, description="default: 1 when the cluster has GPUs")
    compile_sampling: bool = Field(
        False,
        description="torch.compile the sampling engine's forwards (compiles once per process for all "
        "models of the architecture, ~10-25 s on CPU; pays off after many thousands of decode steps)",
    )


class StudyConfig(Strict):
    name: str
    type: Literal["grid", "rounds"] = Field(
        "grid", description="grid: objectives × strategies × hyperparameters; rounds: on-policy rounds"
    )
    task: Literal["summarisation", "qa"] = "summarisation"
    world: WorldSpec = Field(default_factory=WorldSpec)
    data: RealDataSpec | None = Field(None, description="real models and datasets instead of the synthetic world")
    source: str | None = None
    targets: list[str] | None = None
    objectives: list[ObjectiveSpec]
    strategies: list[Literal[STRATEGIES]] = Field(default_factory=lambda: ["source_only"])  # type: ignore[valid-type]
    baselines: list[Literal[SFT_BASELINES]] = Field(default_factory=lambda: ["sft_source"])  # type: ignore[valid-type]
    seeds: list[int] = Field(default_factory=lambda: [0])
    preference_data: PreferenceDataSpec = Field(default_factory=PreferenceDataSpec)
    pseudo_label: PseudoLabelSpec = Field(default_factory=PseudoLabelSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    rounds: RoundsSpec = Field(default_factory=RoundsSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    output_dir: str = "runs/study"
    cache_dir: str | None = Field(
        None, description="stage cache shared between studies (default: OUTPUT_DIR/stages)"
    )

    @model_validator(mode="after")
    def _domains(self) -> StudyConfig:
        from prefshift.data.synthetic.world import TASKS

        if self.data is not None:
            return self._real_domains()
        task = TASKS[self.task]
        self.source = self.source or task["source"]
        self.targets = self.targets or list(task["targets"][:1])
        valid = [task["source"], *task["targets"]]
        for d in [self.source, *self.targets]:
            if d not in valid:
                raise ValueError(f"unknown domain {d!r} for task {self.task!r}; valid: {valid}")
        if self.source in self.targets:
            raise ValueError(f"the source domain {self.source!r} cannot also be a target")
        if "pseudo_judge" in self.strategies and self.pseudo_label.labeller == "llm_judge" and not self.pseudo_label.judge:
            raise ValueError("pseudo_label.judge: labeller 'llm_judge' needs an endpoint config (base_url, model)")
        if not self.objectives:
            raise ValueError("objectives: give at least one objective")
        online = [o.name for o in self.objectives if o.name in ONLINE_OBJECTIVES]
        if self.type == "rounds" and online:
            raise ValueError(
                f"objectives: rounds of preference data are for offline objectives; {online} sample their "
                "own data every step (use a grid study)"
            )
        if self.type == "rounds" and self.strategies != ["source_only"]:
            raise ValueError(
                f"strategies: a rounds study trains on source prompts from the source SFT model; "
                f"use [source_only], got {self.strategies}"
            )
        return self


    def _real_domains(self) -> StudyConfig:
        data = self.data
        if self.source not in (None, data.source_name) or self.targets not in (None, list(data.targets)):
            raise ValueError("source/targets: a real-data study takes its domain names from data.source_name/data.targets")
        self.source, self.targets = data.source_name, list(data.targets)
        if self.type == "rounds":
            raise ValueError("type: rounds studies run on the synthetic world only (their annotators are simulated)")
        if "pseudo_label" in self.strategies and not data.teacher:
            raise ValueError("data.teacher: the pseudo_label strategy needs a teacher model to write target outputs")
        if "pseudo_judge" in self.strategies and self.pseudo_label.labeller == "gold":
            raise ValueError("pseudo_label.labeller: 'gold' exists only in the synthetic world; use reward_model or llm_judge")
        if not self.objectives:
            raise ValueError("objectives: give at least one objective")
        return self


BUNDLED = Path(__file__).resolve().parents[3] / "configs"
"""The repository's ``configs/`` folder (editable installs); a path always works."""


def load_config(path_or_name: str | Path) -> StudyConfig:
    """Load a YAML config (a path, or the name of a bundled config: quick, demo)."""
    path = Path(path_or_name)
    if not path.exists():
        bundled = BUNDLED / f"{path_or_name}.yaml"
        if not bundled.exists():
            names = sorted(p.stem for p in BUNDLED.glob("*.yaml"))
            raise FileNotFoundError(f"config {str(path_or_name)!r} not found (bundled configs: {names})")
        path = bundled
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a study config must be a YAML mapping")
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid study config"]
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise ValueError("\n".join(lines)) from None
