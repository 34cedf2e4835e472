"""The study config: one YAML file describes the whole domain-shift study.

Validated with pydantic so that a typo fails before any compute, with a message naming the field and
the allowed values (``extra="forbid"`` everywhere: an unknown key is an error, never silently ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prefshift.judging import LLMJudgeConfig
from prefshift.objectives import REGISTRY

STRATEGIES = ("source_only", "direct", "mix_sft", "target_sft", "pseudo_label", "pseudo_judge")
"""Adaptation strategies (../shared/study-design.md): SFT stage → preference stage.

source_only: D_S → D_S · direct: none (base model) → D_S · mix_sft: D_S+T → D_S · target_sft: D_T → D_S ·
pseudo_label: D_T^synth → D_T^synth (teacher generation) · pseudo_judge: D_S → pairs of the student's own
target samples ranked by a labeller (teacher judging).
"""

SFT_BASELINES = ("base", "sft_source", "sft_mix", "sft_target", "sft_pseudo")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorldSpec(Strict):
    """The bundled synthetic world (the embedded default)."""

    profile: Literal["quick", "demo"] = "quick"
    seed: int = 0
    dir: str | None = Field(None, description="an already-built world (`prefshift world build`) to use as is")


class ObjectiveSpec(Strict):
    """One objective and its grid: every combination of ``grid`` values × learning rates × epochs is a cell."""

    name: str
    grid: dict[str, list[float]] = Field(default_factory=dict)
    learning_rate: list[float] = Field(default_factory=lambda: [5e-4])
    epochs: list[float] = Field(default_factory=lambda: [1.0])

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in REGISTRY:
            raise ValueError(f"unknown objective {v!r}; valid: {sorted(REGISTRY)}")
        return v

    @model_validator(mode="after")
    def _grid_values(self) -> ObjectiveSpec:
        obj = REGISTRY[self.name]
        for name, values in self.grid.items():
            if not values:
                raise ValueError(f"objective {self.name!r}: grid[{name!r}] is empty")
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


class StudyConfig(Strict):
    name: str
    task: Literal["summarisation", "qa"] = "summarisation"
    world: WorldSpec = Field(default_factory=WorldSpec)
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
    output_dir: str = "runs/study"
    cache_dir: str | None = Field(
        None, description="stage cache shared between studies (default: OUTPUT_DIR/stages)"
    )

    @model_validator(mode="after")
    def _domains(self) -> StudyConfig:
        from prefshift.data.synthetic.world import TASKS

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
