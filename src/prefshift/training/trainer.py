"""Trainers for SFT, preference objectives and Bradley–Terry reward models, on `transformers.Trainer`.

Building on `Trainer` gives accelerate, DeepSpeed/FSDP, gradient accumulation, mixed precision,
checkpointing/resume and `report_to` for free. What prefshift adds is the data path: prompt-shared
packed batches (`packing`), the log-prob engine that runs the LM head only on completion positions
(`logprobs`), and reference log-probs precomputed once and cached on disk (`reference`), so there is
one code path for every objective and no reference forward during training at all.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase, Trainer, TrainingArguments

from prefshift.objectives.base import Objective, PairedStats, UnpairedStats
from prefshift.training.logprobs import last_token_scores, sequence_logps
from prefshift.training.packing import PackedBatch, pack
from prefshift.training.reference import cached_reference_logps, compute_logps

PACKED_KEYS = ("input_ids", "position_ids", "attention_mask", "row", "source", "target", "segment", "last")


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss is NaN/inf, with what is needed to find the cause."""


class PackedCollator:
    """Collates tokenised rows into one prompt-shared packed batch plus per-row extras."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int = 1) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        batch = pack(
            [r["prompt_ids"] for r in rows],
            [r["completion_ids"] for r in rows],
            self.pad_token_id,
            self.pad_to_multiple_of,
        )
        out: dict[str, Any] = {k: getattr(batch, k) for k in PACKED_KEYS}
        if "ref_logps" in rows[0]:
            out["ref_logps"] = torch.tensor([r["ref_logps"] for r in rows], dtype=torch.float32)
        if "label" in rows[0]:
            out["label"] = torch.tensor([bool(r["label"]) for r in rows])
        return out


def _unpack(inputs: Mapping[str, Any]) -> PackedBatch:
    last = inputs["last"]
    return PackedBatch(**{k: inputs[k] for k in PACKED_KEYS}, num_completions=last.shape[1])


def disable_dropout(model: nn.Module) -> None:
    """Dropout makes policy and reference log-probs disagree on identical weights; preference tuning turns it off."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0


def _pad_id(tok: PreTrainedTokenizerBase) -> int:
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an EOS token")
    return pad


def prefer_eager_attention_on_cpu(model: nn.Module, args: TrainingArguments) -> None:
    """Use eager attention for packed batches on CPU.

    Packed batches carry an explicit 4-D mask; with a mask, PyTorch's CPU SDPA kernel is slower than
    plain matmul-softmax-matmul at the sizes prefshift trains on CPU (measured: DPO step of the benchmark
    model 0.164 s with SDPA vs 0.139 s eager, bf16). GPUs keep their fused kernels.
    """
    on_cpu = args.use_cpu or not torch.cuda.is_available()
    if on_cpu and getattr(model.config, "_attn_implementation", None) == "sdpa" and hasattr(
        model, "set_attn_implementation"
    ):
        model.set_attn_implementation("eager")


def _require_rows(train_dataset: datasets.Dataset, eval_dataset: datasets.Dataset | None) -> None:
    for name, ds in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
        if ds is not None and len(ds) == 0:
            raise ValueError(f"{name} is empty (0 rows): nothing to train or evaluate on")


def _base_args(args: TrainingArguments) -> TrainingArguments:
    # The packed columns are not model-forward arguments; Trainer must not drop them.
    args.remove_unused_columns = False
    return args


class PackedTrainer(Trainer):
    """Shared machinery: packed collation, metric averaging in logs, non-finite-loss guard."""

    def __init__(
        self,
        model: nn.Module,
        args: TrainingArguments,
        train_dataset: datasets.Dataset,
        processing_class: PreTrainedTokenizerBase,
        eval_dataset: datasets.Dataset | None = None,
        **kwargs: Any,
    ) -> None:
        _require_rows(train_dataset, eval_dataset)
        self.pad_token_id = _pad_id(processing_class)
        prefer_eager_attention_on_cpu(model, args)
        self._metrics: dict[str, dict[str, list[float]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }
        super().__init__(
            model=model,
            args=_base_args(args),
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            data_collator=PackedCollator(self.pad_token_id),
            **kwargs,
        )

    def _loss(
        self, model: nn.Module, inputs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        # accelerate applies mixed precision by wrapping model.forward; the engine calls the decoder and
        # the head directly, so it enters the same autocast context itself
        with self.accelerator.autocast():
            loss, metrics = self._loss(model, inputs)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"non-finite loss ({loss.item()}) at step {self.state.global_step} "
                f"(epoch {self.state.epoch}); last logged metrics: "
                f"{ {k: v[-1] for k, v in self._metrics['train'].items() if v} }. "
                "Checkpoints saved before this step are intact; lower the learning rate or check the data."
            )
        mode = "train" if model.training else "eval"
        for name, value in metrics.items():
            self._metrics[mode][name].append(float(value.detach().float().mean()))
        return (loss, None) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):  # noqa: D102
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:  # noqa: D102
        mode = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        prefix = "eval_" if mode == "eval" else ""
        metrics = self._metrics[mode]
        for name, values in metrics.items():
            finite = [v for v in values if math.isfinite(v)]
            if not finite:
                continue
            # "<metric>/<group>_sum" with "count/<group>": a mean over the rows of one group (e.g. KTO's
            # desirable rows), which a plain mean of per-batch values would dilute
            group = name.rsplit("/", 1)[-1].removesuffix("_sum")
            counts = metrics.get(f"count/{group}") if name.endswith("_sum") else None
            if counts:
                total = sum(counts)
                if total > 0:
                    logs[f"{prefix}{name.removesuffix('_sum')}"] = sum(finite) / total
            else:
                logs[f"{prefix}{name}"] = sum(finite) / len(finite)
        self._metrics[mode].clear()
        super().log(logs, start_time)


def _sft_loss(model: nn.Module, batch: PackedBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    out = sequence_logps(model, batch, with_entropy=True)
    loss = -out.token_logps.mean()  # token-level mean, as causal-LM SFT does
    return loss, {"nll": loss.detach(), "entropy": out.entropy.mean(), "length": out.lengths.mean()}


class SFTTrainer(PackedTrainer):
    """Supervised fine-tuning on ``sft``-tokenised rows: mean NLL over completion tokens only."""

    def _loss(self, model, inputs):
        return _sft_loss(model, _unpack(inputs))


class PreferenceTrainer(PackedTrainer):
    """One trainer for every objective of the registry.

    Reference-based objectives get reference log-probs precomputed once (cached on disk by content,
    shared across a grid); reference-free ones never run a reference forward. With a peft model the
    reference is the adapter-disabled model, computed before any update.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        args: TrainingArguments,
        train_dataset: datasets.Dataset,
        processing_class: PreTrainedTokenizerBase,
        objective_params: Mapping[str, float] | None = None,
        ref_model: nn.Module | None = None,
        cache_dir: str | Path | None = None,
        eval_dataset: datasets.Dataset | None = None,
        **kwargs: Any,
    ) -> None:
        _require_rows(train_dataset, eval_dataset)
        self.objective = objective
        self.objective_params = objective.resolve(objective_params)
        k = len(train_dataset[0]["completion_ids"])
        if objective.paired and (k != 2 or "label" in train_dataset.column_names):
            raise ValueError(
                f"objective {objective.name!r} needs paired data (chosen, rejected); got {k} completion(s)"
            )
        if not objective.paired and "label" not in train_dataset.column_names:
            raise ValueError(f"objective {objective.name!r} needs unpaired data with a 'label' column")
        disable_dropout(model)
        super().__init__(model, args, train_dataset, processing_class, eval_dataset, **kwargs)
        if objective.needs_reference:
            self.train_dataset = self._with_reference(train_dataset, ref_model, cache_dir)
            if eval_dataset is not None:
                self.eval_dataset = self._with_reference(eval_dataset, ref_model, cache_dir)

    def _with_reference(
        self, ds: datasets.Dataset, ref_model: nn.Module | None, cache_dir: str | Path | None
    ) -> datasets.Dataset:
        model = self.accelerator.unwrap_model(self.model)
        reference = ref_model if ref_model is not None else model
        precision = "bf16" if self.args.bf16 else "fp16" if self.args.fp16 else "fp32"
        kwargs = dict(
            pad_token_id=self.pad_token_id,
            batch_size=max(self.args.per_device_train_batch_size * 2, 16),
            autocast=self.accelerator.autocast,
        )
        adapter_off = getattr(model, "disable_adapter", None) if ref_model is None else None
        ctx = adapter_off() if adapter_off is not None else contextlib.nullcontext()
        with ctx:
            if cache_dir is None:
                logps = compute_logps(reference, ds, **kwargs)
            else:
                logps = cached_reference_logps(
                    reference, ds, cache_dir=cache_dir, precision=precision, **kwargs
                )
        return ds.add_column("ref_logps", [row.tolist() for row in logps])

    def _loss(self, model, inputs):
        batch = _unpack(inputs)
        out = sequence_logps(model, batch, with_entropy=True)
        ref = inputs.get("ref_logps")
        if self.objective.paired:
            stats = PairedStats(
                chosen_logps=out.logps[:, 0],
                rejected_logps=out.logps[:, 1],
                chosen_lengths=out.lengths[:, 0],
                rejected_lengths=out.lengths[:, 1],
                ref_chosen_logps=None if ref is None else ref[:, 0],
                ref_rejected_logps=None if ref is None else ref[:, 1],
            )
        else:
            stats = UnpairedStats(
                logps=out.logps[:, 0],
                lengths=out.lengths[:, 0],
                labels=inputs["label"],
                ref_logps=None if ref is None else ref[:, 0],
                kl_logps=out.logps[:, 1],
                ref_kl_logps=None if ref is None else ref[:, 1],
            )
        result = self.objective(stats, **self.objective_params)
        metrics = dict(result.metrics)
        metrics["entropy"] = out.entropy[:, 0]
        metrics["length/chosen"] = out.lengths[:, 0]
        if self.objective.paired:
            metrics["length/rejected"] = out.lengths[:, 1]
        if ref is not None:
            # per-token log-ratio to the reference on the first completion: a drift signal, logged always
            metrics["logratio_per_token"] = (out.logps[:, 0].detach() - ref[:, 0]) / out.lengths[:, 0].clamp(
                min=1
            )
        return result.losses.mean(), metrics


class RewardTrainer(PackedTrainer):
    """Bradley–Terry reward model on paired data: −log σ(r(x, y_c) − r(x, y_r)).

    The model is an ``AutoModelForSequenceClassification`` with one label; it scores each completion at
    its last token on the prompt-shared layout. ``center_rewards_coefficient`` adds the auxiliary
    (r_c + r_r)² term of Eisenstein et al. (2023) that keeps rewards centred near zero.
    """

    def __init__(self, *args: Any, center_rewards_coefficient: float = 0.0, **kwargs: Any) -> None:
        self.center_rewards_coefficient = center_rewards_coefficient
        super().__init__(*args, **kwargs)

    def _loss(self, model, inputs):
        scores = last_token_scores(model, _unpack(inputs))
        margin = scores[:, 0] - scores[:, 1]
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        if self.center_rewards_coefficient:
            loss = loss + self.center_rewards_coefficient * (scores.sum(-1) ** 2).mean()
        return loss, {
            "rewards/chosen": scores[:, 0],
            "rewards/rejected": scores[:, 1],
            "rewards/margins": margin,
            "rewards/accuracies": (margin > 0).float(),
        }


def reward_scores(
    model: nn.Module, ds: datasets.Dataset, pad_token_id: int, batch_size: int = 64
) -> np.ndarray:
    """Scores [N, K] of every completion of a tokenised dataset under a reward model."""
    model.eval()
    out = np.zeros((len(ds), len(ds[0]["completion_ids"])), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(ds), batch_size):
            rows = ds.select(range(start, min(start + batch_size, len(ds))))
            batch = pack(rows["prompt_ids"], rows["completion_ids"], pad_token_id)
            batch = batch.to(next(model.parameters()).device)
            out[start : start + len(rows)] = last_token_scores(model, batch).float().cpu().numpy()
    return out
