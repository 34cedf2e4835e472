"""The datasets of each adaptation strategy, built from a synthetic world.

Each function returns plain rows in prefshift's TRL formats (``prompt/completion`` for SFT,
``prompt/chosen/rejected`` for pairs). Completions start with a space because the world's tokenizer
splits on whitespace: ``prompt + completion`` must tokenise as prompt tokens then completion tokens.
Every function that needs model samples takes a ``sample`` callable (prompts, n, temperature, top_p,
seed → list of n texts per prompt) so that all sampling goes through the one generation engine.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from prefshift.data.synthetic.annotators import BradleyTerryAnnotator, build_preference_pairs, unpair
from prefshift.data.synthetic.gold import gold_reward
from prefshift.data.synthetic.seeding import derive_seed
from prefshift.data.synthetic.world import oracle_write
from prefshift.study.config import PreferenceDataSpec, PseudoLabelSpec

SampleFn = Callable[[list[str], int, float, float, int], list[list[str]]]
ScoreFn = Callable[[list[dict[str, Any]], list[str]], list[float]]


def completion(text: str, like: dict[str, Any] | None = None) -> str:
    """``text`` as a completion: after one space (the synthetic world's and plain prompt formats'
    convention), or rendered like the example's own ``completion`` (a chat template's generation
    prompt already ends the line, so real-data rows may carry no leading space)."""
    rendered = (like or {}).get("completion")
    lead = " " if rendered is None else rendered[: len(rendered) - len(rendered.lstrip())]
    return lead + text.strip()


def sft_rows(examples: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """SFT on the dataset's own references."""
    # real-data rows carry their completion rendered for the model's template; synthetic rows do not
    return [
        {"prompt": ex["prompt"], "completion": ex.get("completion") or completion(ex["reference"])}
        for ex in examples
    ]


def mix_rows(
    source: Sequence[dict[str, Any]], target: Sequence[dict[str, Any]], seed: int
) -> list[dict[str, str]]:
    """D_S+T: the concatenation of source and target SFT data, shuffled (seeded)."""
    rows = sft_rows(source) + sft_rows(target)
    random.Random(derive_seed("mix", seed)).shuffle(rows)
    return rows


def interleave(splits: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Round-robin over several domains' splits, so that any prefix (e.g. a pseudo-label share)
    takes every domain in equal measure."""
    out: list[dict[str, Any]] = []
    for i in range(max((len(s) for s in splits), default=0)):
        out.extend(s[i] for s in splits if i < len(s))
    return out


def source_pairs(
    examples: Sequence[dict[str, Any]], spec: PreferenceDataSpec, sample: SampleFn, seed: int
) -> list[dict[str, Any]]:
    """Source preference pairs labelled by simulated annotators over SFT samples, references and corruptions."""
    samples: dict[str, list[str]] = {}
    if spec.model_samples:
        texts = sample(
            [ex["prompt"] for ex in examples], spec.model_samples, spec.sample_temperature, 1.0, seed
        )
        samples = {ex["id"]: t for ex, t in zip(examples, texts, strict=True)}
    annotator = BradleyTerryAnnotator(spec.annotator.temperature, spec.annotator.length_bias, seed=seed)
    pairs = build_preference_pairs(
        examples,
        annotator,
        samples,
        pairs_per_prompt=spec.pairs_per_prompt,
        include_reference=spec.include_reference,
        n_corrupted=spec.n_corrupted,
        seed=seed,
    )
    return [spaced(p) for p in pairs]


def spaced(pair: dict[str, Any]) -> dict[str, Any]:
    """A pair with both completions in the world's leading-space form."""
    return {**pair, "chosen": completion(pair["chosen"]), "rejected": completion(pair["rejected"])}


def pseudo_share(examples: Sequence[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """The first ``share`` of the target prompts (the splits are already in a seeded random order)."""
    return list(examples[: max(1, round(share * len(examples)))])


def teacher_generation(
    examples: Sequence[dict[str, Any]], spec: PseudoLabelSpec, seed: int, sample: SampleFn | None = None
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """D_T^synth as the reference study builds it: (SFT rows, preference pairs).

    For each target prompt the teacher writes k candidates; each candidate is an SFT row and makes one
    pair with chosen = the candidate and rejected = the dataset's reference (``rejected="reference"``) or
    the student's own sample (``rejected="student"``, needs ``sample``). Candidates that are empty or
    identical to the rejected response are dropped.
    """
    examples = pseudo_share(examples, spec.share)
    students: list[list[str]] = []
    if spec.rejected == "student":
        if sample is None:
            raise ValueError("pseudo_label.rejected='student' needs a student sampler")
        students = sample([ex["prompt"] for ex in examples], 1, spec.temperature, spec.top_p, seed)
    sft: list[dict[str, str]] = []
    pairs: list[dict[str, Any]] = []
    for i, ex in enumerate(examples):
        rng = random.Random(derive_seed("teacher", seed, ex["id"]))
        rejected = ex["reference"] if spec.rejected == "reference" else students[i][0]
        for _ in range(spec.k):
            text = oracle_write(ex["record"], ex["domain"], spec.teacher_quality, rng)
            if not text.strip() or text.strip() == rejected.strip():
                continue
            sft.append({"prompt": ex["prompt"], "completion": completion(text)})
            pairs.append(
                {
                    "id": ex["id"],
                    "domain": ex["domain"],
                    "prompt": ex["prompt"],
                    "chosen": completion(text),
                    "rejected": completion(rejected),
                    "chosen_gold": gold_reward(ex["record"], text),
                    "rejected_gold": gold_reward(ex["record"], rejected),
                }
            )
    if not pairs:
        raise ValueError(
            "pseudo-labelling produced no pairs (every candidate was empty or equal to the rejected)"
        )
    return sft, pairs


def teacher_judging(
    examples: Sequence[dict[str, Any]], spec: PseudoLabelSpec, sample: SampleFn, score: ScoreFn, seed: int
) -> list[dict[str, Any]]:
    """Pairs from the student's own target samples: best vs worst of k by the labeller's score."""
    examples = pseudo_share(examples, spec.share)
    texts = sample([ex["prompt"] for ex in examples], spec.k, spec.temperature, spec.top_p, seed)
    pairs = judged_pairs(examples, texts, score, spec.min_margin)
    if not pairs:
        raise ValueError("teacher judging kept no pairs: all candidates tied or fell below min_margin")
    return pairs


def judged_pairs(
    examples: Sequence[dict[str, Any]], texts: Sequence[Sequence[str]], score: ScoreFn, min_margin: float
) -> list[dict[str, Any]]:
    """One pair per prompt from its candidates: best vs worst by ``score``; prompts whose margin is at
    most ``min_margin`` (or with fewer than two distinct non-empty candidates) are skipped."""
    pairs = []
    for ex, cands in zip(examples, texts, strict=True):
        cands = list(dict.fromkeys(t for t in cands if t.strip()))
        if len(cands) < 2:
            continue
        scores = score([ex] * len(cands), cands)
        best = max(range(len(cands)), key=scores.__getitem__)
        worst = min(range(len(cands)), key=scores.__getitem__)
        if scores[best] - scores[worst] <= min_margin:
            continue
        pair = {
            "id": ex["id"],
            "domain": ex["domain"],
            "prompt": ex["prompt"],
            "chosen": completion(cands[best], ex),
            "rejected": completion(cands[worst], ex),
        }
        if ex.get("record") is not None:  # the synthetic world's gold reward, for later analysis
            pair |= {
                "chosen_gold": gold_reward(ex["record"], cands[best]),
                "rejected_gold": gold_reward(ex["record"], cands[worst]),
            }
        pairs.append(pair)
    return pairs


def as_unpaired(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """KTO rows: chosen (or the teacher's candidate) desirable, rejected undesirable."""
    return unpair([{"chosen_origin": "", "rejected_origin": "", **p} for p in pairs])
