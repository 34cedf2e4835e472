"""Tests of the objective zoo.

Expected values are computed here with plain `math` from each paper's formula, never by calling the code
under test. For the losses TRL's DPOTrainer also implements, the per-example loss is additionally compared
against TRL's own source: the loss branch of `DPOTrainer._compute_loss` is extracted from the installed
file and executed on the same inputs, so a divergence in conventions (length normalisation, smoothing,
signs) shows up without a model or a trainer.
"""

from __future__ import annotations

import ast
import importlib.util
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import CodeType, SimpleNamespace
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F

from prefshift.objectives import (
    REGISTRY,
    LossOutput,
    PairedStats,
    UnpairedStats,
    get_objective,
    list_objectives,
)

# --- inputs ------------------------------------------------------------------------------------------


class Row(NamedTuple):
    """One preference pair: policy / reference summed log-probs and token counts."""

    pc: float  # policy, chosen
    pr: float  # policy, rejected
    rc: float  # reference, chosen
    rr: float  # reference, rejected
    lc: float  # chosen length
    lr: float  # rejected length


ROWS = (
    Row(pc=-5.0, pr=-7.0, rc=-6.0, rr=-6.5, lc=4.0, lr=5.0),
    Row(pc=-12.0, pr=-9.0, rc=-10.0, rr=-11.0, lc=6.0, lr=3.0),
    Row(pc=-3.0, pr=-3.5, rc=-2.0, rr=-4.0, lc=2.0, lr=7.0),
)


def _stats(
    rows: tuple[Row, ...] = ROWS, *, with_ref: bool = True, dtype: torch.dtype = torch.float64
) -> PairedStats:
    def col(field: str) -> torch.Tensor:
        return torch.tensor([getattr(r, field) for r in rows], dtype=dtype)

    return PairedStats(
        chosen_logps=col("pc"),
        rejected_logps=col("pr"),
        chosen_lengths=col("lc"),
        rejected_lengths=col("lr"),
        ref_chosen_logps=col("rc") if with_ref else None,
        ref_rejected_logps=col("rr") if with_ref else None,
    )


def _kto_stats() -> UnpairedStats:
    return UnpairedStats(
        logps=torch.tensor([-5.0, -8.0, -3.0, -9.0], dtype=torch.float64),
        lengths=torch.tensor([4.0, 6.0, 2.0, 5.0], dtype=torch.float64),
        labels=torch.tensor([True, False, True, False]),
        ref_logps=torch.tensor([-6.0, -7.0, -3.5, -8.0], dtype=torch.float64),
        kl_logps=torch.tensor([-4.0, -6.0, -5.0, -7.0], dtype=torch.float64),
        ref_kl_logps=torch.tensor([-4.5, -6.2, -4.9, -7.4], dtype=torch.float64),
    )


# --- hand-computed expectations (paper formulas, plain math) -----------------------------------------


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logsig(x: float) -> float:
    return math.log(_sig(x))


def _ratios(r: Row) -> tuple[float, float]:
    return r.pc - r.rc, r.pr - r.rr


Expected = tuple[float, float, float]  # loss, chosen reward, rejected reward
ExpectedFn = Callable[[Row, dict[str, float]], Expected]


def _sft(r: Row, h: dict[str, float]) -> Expected:
    return -r.pc / r.lc, r.pc / r.lc, r.pr / r.lr


def _dpo(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b, e = h["beta"], h["label_smoothing"]
    return -(1 - e) * _logsig(b * (c - j)) - e * _logsig(-b * (c - j)), b * c, b * j


def _ipo(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b = h["beta"]
    return (c / r.lc - j / r.lr - 1 / (2 * b)) ** 2, b * c / r.lc, b * j / r.lr


def _hinge(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b = h["beta"]
    return max(0.0, 1 - b * (c - j)), b * c, b * j


def _slic_hf(r: Row, h: dict[str, float]) -> Expected:
    loss = max(0.0, h["delta"] - r.pc + r.pr) + h["lambda_sft"] * (-r.pc / r.lc)
    return loss, r.pc, r.pr


def _orpo(r: Row, h: dict[str, float]) -> Expected:
    a, b = r.pc / r.lc, r.pr / r.lr

    def odds(x: float) -> float:
        return math.log(math.exp(x) / (1 - math.exp(x)))

    return -a - h["beta"] * _logsig(odds(a) - odds(b)), h["beta"] * a, h["beta"] * b


def _simpo(r: Row, h: dict[str, float]) -> Expected:
    a, b = r.pc / r.lc, r.pr / r.lr
    beta = h["beta"]
    loss = -_logsig(beta * a - beta * b - h["gamma"]) + h["sft_weight"] * -a
    return loss, beta * a, beta * b


def _cpo(r: Row, h: dict[str, float]) -> Expected:
    b = h["beta"]
    return -_logsig(b * (r.pc - r.pr)) + h["alpha"] * (-r.pc / r.lc), b * r.pc, b * r.pr


def _ln_dpo(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b = h["beta"]
    return -_logsig(b * (c / r.lc - j / r.lr)), b * c / r.lc, b * j / r.lr


def _robust_dpo(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b, e = h["beta"], h["label_smoothing"]
    d = b * (c - j)
    return ((1 - e) * -_logsig(d) - e * -_logsig(-d)) / (1 - 2 * e), b * c, b * j


def _bco_pair(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b = h["beta"]
    return -_logsig(b * c) - _logsig(-b * j), b * c, b * j


def _nca_pair(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b = h["beta"]
    return -_logsig(b * c) - 0.5 * _logsig(-b * c) - 0.5 * _logsig(-b * j), b * c, b * j


def _apo_zero(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b = h["beta"]
    return (1 - _sig(b * c)) + _sig(b * j), b * c, b * j


def _apo_down(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b = h["beta"]
    return _sig(b * c) + (1 - _sig(b * (c - j))), b * c, b * j


def _sppo_hard(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b = h["beta"]
    return (c - 1 / (2 * b)) ** 2 + (j + 1 / (2 * b)) ** 2, b * c, b * j


def _exo_pair(r: Row, h: dict[str, float]) -> Expected:
    c, j = _ratios(r)
    b, e = h["beta"], h["label_smoothing"]
    q_w, q_l = _sig(b * (c - j)), _sig(-b * (c - j))
    kl = q_w * math.log(q_w / (1 - e)) + q_l * math.log(q_l / e)
    return kl, b * c, b * j


HAND_CASES: list[tuple[str, dict[str, float], ExpectedFn]] = [
    ("sft", {}, _sft),
    ("dpo", {"beta": 0.1, "label_smoothing": 0.0}, _dpo),
    ("dpo", {"beta": 0.5, "label_smoothing": 0.2}, _dpo),
    ("ipo", {"beta": 0.1}, _ipo),
    ("ipo", {"beta": 1.0}, _ipo),
    ("hinge", {"beta": 0.1}, _hinge),
    ("hinge", {"beta": 1.0}, _hinge),  # first pair is past the margin: zero loss
    ("slic_hf", {"delta": 1.0, "lambda_sft": 0.1}, _slic_hf),
    ("slic_hf", {"delta": 3.0, "lambda_sft": 0.0}, _slic_hf),
    ("orpo", {"beta": 0.1}, _orpo),
    ("orpo", {"beta": 1.0}, _orpo),
    ("simpo", {"beta": 2.0, "gamma": 0.5, "sft_weight": 0.0}, _simpo),
    ("simpo", {"beta": 10.0, "gamma": 3.0, "sft_weight": 0.5}, _simpo),
    ("cpo", {"beta": 0.1, "alpha": 1.0}, _cpo),
    ("cpo", {"beta": 0.5, "alpha": 0.0}, _cpo),
    ("ln_dpo", {"beta": 1.0}, _ln_dpo),
    ("ln_dpo", {"beta": 5.0}, _ln_dpo),
    ("robust_dpo", {"beta": 0.1, "label_smoothing": 0.1}, _robust_dpo),
    ("robust_dpo", {"beta": 0.5, "label_smoothing": 0.0}, _robust_dpo),
    ("bco_pair", {"beta": 0.1}, _bco_pair),
    ("bco_pair", {"beta": 2.0}, _bco_pair),
    ("nca_pair", {"beta": 0.1}, _nca_pair),
    ("nca_pair", {"beta": 2.0}, _nca_pair),
    ("apo_zero", {"beta": 0.1}, _apo_zero),
    ("apo_zero", {"beta": 2.0}, _apo_zero),
    ("apo_down", {"beta": 0.1}, _apo_down),
    ("apo_down", {"beta": 2.0}, _apo_down),
    ("sppo_hard", {"beta": 0.1}, _sppo_hard),
    ("sppo_hard", {"beta": 1.0}, _sppo_hard),
    ("exo_pair", {"beta": 0.1, "label_smoothing": 1e-3}, _exo_pair),
    ("exo_pair", {"beta": 1.0, "label_smoothing": 0.3}, _exo_pair),
]


@pytest.mark.parametrize(
    ("name", "hparams", "expected"),
    HAND_CASES,
    ids=[f"{name}-{'-'.join(f'{k}={v}' for k, v in h.items())}" for name, h, _ in HAND_CASES],
)
def test_paired_objective_matches_hand_computed(
    name: str, hparams: dict[str, float], expected: ExpectedFn
) -> None:
    out = get_objective(name)(_stats(), **hparams)
    for i, row in enumerate(ROWS):
        loss, chosen_reward, rejected_reward = expected(row, hparams)
        assert out.losses[i].item() == pytest.approx(loss, rel=1e-9, abs=1e-12)
        assert out.metrics["rewards/chosen"][i].item() == pytest.approx(chosen_reward, rel=1e-9)
        assert out.metrics["rewards/rejected"][i].item() == pytest.approx(rejected_reward, rel=1e-9)


def test_every_objective_has_a_hand_computed_test() -> None:
    assert {name for name, _, _ in HAND_CASES} | {"kto"} == set(REGISTRY)


def test_hinge_is_zero_past_the_margin() -> None:
    # Guards the second hinge case above against the data drifting: Δ = 1.5 > 1/β for β = 1.
    assert get_objective("hinge")(_stats(), beta=1.0).losses[0].item() == 0.0


# --- KTO ---------------------------------------------------------------------------------------------


def test_kto_matches_hand_computed() -> None:
    stats = _kto_stats()
    beta, w_d, w_u = 0.1, 1.0, 1.5
    out = get_objective("kto")(stats, beta=beta, desirable_weight=w_d, undesirable_weight=w_u)
    z0 = max(0.0, (0.5 + 0.2 - 0.1 + 0.4) / 4)  # mean of kl_logps - ref_kl_logps
    rewards = [-5.0 + 6.0, -8.0 + 7.0, -3.0 + 3.5, -9.0 + 8.0]
    labels = [True, False, True, False]
    for i, (r, good) in enumerate(zip(rewards, labels, strict=True)):
        want = w_d * (1 - _sig(beta * (r - z0))) if good else w_u * (1 - _sig(beta * (z0 - r)))
        assert out.losses[i].item() == pytest.approx(want, rel=1e-9)
        assert out.metrics["rewards/desirable_sum"][i].item() == pytest.approx(beta * r if good else 0.0)
        assert out.metrics["rewards/undesirable_sum"][i].item() == pytest.approx(0.0 if good else beta * r)
        assert out.metrics["count/desirable"][i].item() == float(good)
        assert out.metrics["count/undesirable"][i].item() == float(not good)
        assert out.metrics["kl"][i].item() == pytest.approx(z0)
    assert all(m.shape == (4,) for m in out.metrics.values())


def test_kto_reference_point_is_clamped_and_optional() -> None:
    stats = _kto_stats()
    stats.kl_logps = stats.ref_kl_logps - 1.0  # policy below reference on mismatched pairs: z0 = 0
    clamped = get_objective("kto")(stats)
    assert torch.all(clamped.metrics["kl"] == 0)
    stats.kl_logps = stats.ref_kl_logps = None
    assert torch.allclose(get_objective("kto")(stats).losses, clamped.losses)


def test_kto_reference_point_carries_no_gradient() -> None:
    stats = _kto_stats()
    assert stats.kl_logps is not None
    stats.kl_logps.requires_grad_(True)
    stats.logps.requires_grad_(True)
    get_objective("kto")(stats).losses.sum().backward()
    assert stats.kl_logps.grad is None
    assert stats.logps.grad is not None


def test_kto_rejects_half_given_kl_fields() -> None:
    stats = _kto_stats()
    stats.ref_kl_logps = None
    with pytest.raises(ValueError, match="kl_logps and ref_kl_logps"):
        get_objective("kto")(stats)


# --- flags, defaults, metrics ------------------------------------------------------------------------

REFERENCE_FREE = {"sft", "slic_hf", "orpo", "simpo", "cpo"}
WITH_NLL = {"sft", "slic_hf", "orpo", "simpo", "cpo"}
PAIRED = sorted(set(REGISTRY) - {"kto"})


def test_reference_and_pairing_flags() -> None:
    for name, objective in REGISTRY.items():
        assert objective.needs_reference == (name not in REFERENCE_FREE), name
        assert objective.paired == (name != "kto"), name


def test_defaults() -> None:
    defaults = {name: {h.name: h.default for h in obj.hparams} for name, obj in REGISTRY.items()}
    assert defaults == {
        "sft": {},
        "dpo": {"beta": 0.1, "label_smoothing": 0.0},
        "ipo": {"beta": 0.1},
        "hinge": {"beta": 0.1},
        "slic_hf": {"delta": 1.0, "lambda_sft": 0.1},
        "kto": {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0},
        "orpo": {"beta": 0.1},
        "simpo": {"beta": 2.0, "gamma": 0.5, "sft_weight": 0.0},
        "cpo": {"beta": 0.1, "alpha": 1.0},
        "ln_dpo": {"beta": 1.0},
        "robust_dpo": {"beta": 0.1, "label_smoothing": 0.1},
        "bco_pair": {"beta": 0.1},
        "nca_pair": {"beta": 0.1},
        "apo_zero": {"beta": 0.1},
        "apo_down": {"beta": 0.1},
        "sppo_hard": {"beta": 0.1},
        "exo_pair": {"beta": 0.1, "label_smoothing": 1e-3},
    }
    for objective in REGISTRY.values():
        objective.resolve()  # every default lies in its own allowed interval
        assert "arXiv:" in objective.citation and objective.summary


@pytest.mark.parametrize("name", PAIRED)
def test_paired_metrics(name: str) -> None:
    out = get_objective(name)(_stats())
    assert isinstance(out, LossOutput)
    assert out.losses.shape == (len(ROWS),)
    required = {
        "rewards/chosen",
        "rewards/rejected",
        "rewards/margins",
        "rewards/accuracies",
        "logps/chosen",
        "logps/rejected",
    }
    assert required <= set(out.metrics)
    assert ("nll" in out.metrics) == (name in WITH_NLL)
    assert all(m.shape == (len(ROWS),) for m in out.metrics.values())
    m = out.metrics
    assert torch.allclose(m["rewards/margins"], m["rewards/chosen"] - m["rewards/rejected"])
    assert torch.equal(m["rewards/accuracies"], (m["rewards/margins"] > 0).to(m["rewards/accuracies"].dtype))
    assert torch.equal(m["logps/chosen"], _stats().chosen_logps)


# --- registry and validation errors ------------------------------------------------------------------


def test_registry_names() -> None:
    assert list_objectives() == sorted(REGISTRY)
    assert all(obj.name == name for name, obj in REGISTRY.items())
    assert get_objective("dpo") is REGISTRY["dpo"]


def test_unknown_objective_lists_choices_and_suggests() -> None:
    with pytest.raises(ValueError) as err:
        get_objective("simpoo")
    message = str(err.value)
    assert ", ".join(sorted(REGISTRY)) in message
    assert "Did you mean 'simpo'?" in message
    with pytest.raises(ValueError, match="valid: apo_down"):
        get_objective("zzzzzz")


@pytest.mark.parametrize(
    ("name", "hparams", "interval"),
    [
        ("dpo", {"beta": 0.0}, r"beta=0\.0 .*\(0\.0, inf\]"),
        ("dpo", {"label_smoothing": 0.5}, r"label_smoothing=0\.5 .*\[0\.0, 0\.5\)"),
        ("robust_dpo", {"label_smoothing": -0.1}, r"label_smoothing=-0\.1 .*\[0\.0, 0\.5\)"),
        ("exo_pair", {"label_smoothing": 0.0}, r"label_smoothing=0\.0 .*\(0\.0, 1\.0\)"),
        ("slic_hf", {"lambda_sft": -1.0}, r"lambda_sft=-1\.0 .*\[0\.0, inf\]"),
        ("simpo", {"beta": float("nan")}, r"beta=nan"),
        ("kto", {"undesirable_weight": -1.0}, r"undesirable_weight=-1\.0 .*\[0\.0, inf\]"),
    ],
)
def test_out_of_range_hparam_names_field_and_interval(
    name: str, hparams: dict[str, float], interval: str
) -> None:
    stats = _kto_stats() if name == "kto" else _stats()
    with pytest.raises(ValueError, match=interval):
        get_objective(name)(stats, **hparams)


def test_unknown_hparam_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['tau'\].*valid: \['beta', "):
        get_objective("simpo")(_stats(), tau=1.0)
    with pytest.raises(ValueError, match="valid: none"):
        get_objective("sft")(_stats(), beta=1.0)


@pytest.mark.parametrize("name", sorted(n for n in PAIRED if n not in REFERENCE_FREE))
def test_reference_based_objective_requires_refs(name: str) -> None:
    objective = get_objective(name)
    with pytest.raises(ValueError, match="needs reference log-probs"):
        objective(_stats(with_ref=False))
    with pytest.raises(ValueError, match="needs reference log-probs"):  # the pure function checks too
        objective.fn(_stats(with_ref=False), **objective.resolve())


def test_kto_requires_refs_and_unpaired_stats() -> None:
    stats = _kto_stats()
    stats.ref_logps = None
    with pytest.raises(ValueError, match="needs reference log-probs"):
        get_objective("kto")(stats)
    with pytest.raises(TypeError, match="takes UnpairedStats"):
        get_objective("kto")(_stats())
    with pytest.raises(TypeError, match="takes PairedStats"):
        get_objective("dpo")(_kto_stats())


@pytest.mark.parametrize("name", sorted(REFERENCE_FREE))
def test_reference_free_objective_ignores_refs(name: str) -> None:
    with_ref = get_objective(name)(_stats()).losses
    assert torch.equal(get_objective(name)(_stats(with_ref=False)).losses, with_ref)


# --- parity with TRL's DPOTrainer --------------------------------------------------------------------


@cache
def _trl_loss_branch() -> CodeType:
    """The `if loss_type == ...` chain of TRL's `DPOTrainer._compute_loss`, compiled on its own."""
    spec = importlib.util.find_spec("trl")
    if spec is None or spec.origin is None:
        pytest.skip("trl is not installed (pip install -e '.[test]')")
    path = Path(spec.origin).parent / "trainer" / "dpo_trainer.py"
    tree = ast.parse(path.read_text())
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DPOTrainer")
    method = next(n for n in trainer.body if isinstance(n, ast.FunctionDef) and n.name == "_compute_loss")
    loop = next(
        n for n in ast.walk(method) if isinstance(n, ast.For) and "self.loss_types" in ast.unparse(n.iter)
    )
    branch = next(n for n in loop.body if isinstance(n, ast.If))
    return compile(ast.Module(body=[branch], type_ignores=[]), str(path), "exec")


def _trl_losses(stats: PairedStats, loss_type: str, beta: float, label_smoothing: float) -> torch.Tensor:
    """Run TRL's per-sequence loss for `loss_type` (reverse-KL scores, no ld_alpha) on `stats`."""
    assert stats.ref_chosen_logps is not None and stats.ref_rejected_logps is not None
    chosen = stats.chosen_logps - stats.ref_chosen_logps
    rejected = stats.rejected_logps - stats.ref_rejected_logps
    lengths = torch.cat([stats.chosen_lengths, stats.rejected_lengths]).long()
    positions = torch.arange(int(lengths.max()) + 3)
    completion_mask = (positions < lengths[:, None]).long()  # [chosen; rejected] x tokens, as TRL batches
    namespace = {
        "torch": torch,
        "F": F,
        "math": math,
        "device": torch.device("cpu"),
        "self": SimpleNamespace(beta=beta, label_smoothing=label_smoothing),
        "loss_type": loss_type,
        "chosen_logratios": chosen,
        "rejected_logratios": rejected,
        "chosen_scores": chosen,
        "rejected_scores": rejected,
        "delta_score": chosen - rejected,
        "completion_mask": completion_mask,
    }
    exec(_trl_loss_branch(), namespace)
    return namespace["per_sequence_loss"]


def _random_stats(batch: int = 16, seed: int = 0) -> PairedStats:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 40, (2, batch), generator=g).double()
    policy = -torch.rand(2, batch, generator=g, dtype=torch.float64) * lengths * 3
    ref = policy + torch.randn(2, batch, generator=g, dtype=torch.float64) * 4
    return PairedStats(policy[0], policy[1], lengths[0], lengths[1], ref[0], ref[1])


TRL_LOSS_TYPES = [
    ("sigmoid", "dpo", 0.0),
    ("hinge", "hinge", 0.0),
    ("ipo", "ipo", 0.0),
    ("exo_pair", "exo_pair", 1e-3),
    ("exo_pair", "exo_pair", 0.2),
    ("nca_pair", "nca_pair", 0.0),
    ("robust", "robust_dpo", 0.1),
    ("robust", "robust_dpo", 0.4),
    ("bco_pair", "bco_pair", 0.0),
    ("sppo_hard", "sppo_hard", 0.0),
    ("apo_zero", "apo_zero", 0.0),
    ("apo_down", "apo_down", 0.0),
    ("sigmoid_norm", "ln_dpo", 0.0),
]


@pytest.mark.parametrize("beta", [0.1, 1.0])
@pytest.mark.parametrize(("loss_type", "name", "label_smoothing"), TRL_LOSS_TYPES)
def test_matches_trl_dpo_trainer(loss_type: str, name: str, label_smoothing: float, beta: float) -> None:
    stats = _random_stats()
    objective = get_objective(name)
    smoothing = {"label_smoothing": label_smoothing} if "label_smoothing" in objective.resolve() else {}
    ours = objective(stats, beta=beta, **smoothing).losses
    torch.testing.assert_close(
        ours, _trl_losses(stats, loss_type, beta, label_smoothing), rtol=1e-6, atol=1e-9
    )


# --- numerical safety --------------------------------------------------------------------------------

EXTREME_ROWS = (
    Row(pc=-1e4, pr=-1e4, rc=-1e4, rr=-1e4, lc=1.0, lr=1.0),
    Row(pc=-1e4, pr=0.0, rc=0.0, rr=-1e4, lc=1000.0, lr=1.0),
    Row(pc=0.0, pr=-1e4, rc=-1e4, rr=0.0, lc=1.0, lr=1000.0),
    Row(pc=-1e4, pr=-1e-3, rc=-1e-3, rr=-1e4, lc=3.0, lr=1.0),
    Row(pc=0.0, pr=0.0, rc=0.0, rr=0.0, lc=0.0, lr=0.0),  # empty responses
)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_gradients_finite_for_extreme_inputs(name: str) -> None:
    objective = get_objective(name)
    if objective.paired:
        stats = _stats(EXTREME_ROWS, dtype=torch.float32)
        stats.chosen_logps.requires_grad_(True)
        stats.rejected_logps.requires_grad_(True)
        leaves = [stats.chosen_logps, stats.rejected_logps]
    else:
        logps = torch.tensor([-1e4, 0.0, -1e4, -1e-3], requires_grad=True)
        stats = UnpairedStats(
            logps=logps,
            lengths=torch.tensor([1.0, 1000.0, 3.0, 0.0]),
            labels=torch.tensor([True, False, False, True]),
            ref_logps=torch.tensor([0.0, -1e4, -1e4, 0.0]),
            kl_logps=torch.tensor([-1e4, 0.0, -1e4, 0.0]),
            ref_kl_logps=torch.tensor([0.0, -1e4, -1e4, 0.0]),
        )
        leaves = [logps]
    out = objective(stats)
    assert torch.isfinite(out.losses).all()
    out.losses.sum().backward()
    assert leaves[0].grad is not None
    for leaf in leaves:  # sft never looks at the rejected response, so that grad may be None
        assert leaf.grad is None or torch.isfinite(leaf.grad).all()
    for key, value in out.metrics.items():
        assert torch.isfinite(value).all(), key
