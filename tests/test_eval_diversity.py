"""Diversity metrics against hand-computed values; fake encoders / NLI functions for the maths, the
bundled MiniLM encoder and a tiny random NLI checkpoint for the loaders."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from prefshift.evaluation import (
    bleu,
    distinct_n,
    diversity_report,
    ead,
    hf_nli_fn,
    minilm_encoder,
    nli_diversity,
    sbert_diversity,
    self_bleu,
)

# --- EAD / distinct-n ----------------------------------------------------------------------------


def test_ead_by_hand() -> None:
    # unigrams a b a b c: C = 5, U = 3; bigrams (a b) (b a) (b c): C = 3, U = 3 — none across samples.
    expected_1 = 3 / (10 * (1 - 0.9**5))  # 0.7326
    expected_2 = min(1.0, 3 / (10 * (1 - 0.9**3)))  # 1.107 -> clipped to 1
    got = ead([["a b a", "b c"]], vocab_size=10, max_n=2)
    assert got == pytest.approx([(expected_1 + expected_2) / 2])


def test_ead_skips_orders_without_ngrams_and_large_vocab() -> None:
    # One token: only n = 1 has n-grams; C = 1 gives expectation V·(1 − (V−1)/V) = 1 -> EAD 1.
    assert ead([["a"]], vocab_size=50257) == pytest.approx([1.0])
    v, c = 50257, 40
    texts = [" ".join(f"w{i}" for i in range(20)), " ".join(f"w{i}" for i in range(20))]  # U = 20
    assert ead([texts], vocab_size=v, max_n=1) == pytest.approx([20 / (v * (1 - ((v - 1) / v) ** c))])


def test_ead_undefined_prompt_is_nan() -> None:
    got = ead([["", " "], ["x y"]], vocab_size=100)
    assert math.isnan(got[0]) and not math.isnan(got[1])


def test_distinct_n_by_hand() -> None:
    assert distinct_n([["a b a", "b c"]], 1) == pytest.approx([3 / 5])
    assert distinct_n([["a b a", "b c"]], 2) == pytest.approx([1.0])
    assert distinct_n([["a a", "a a"]], 2) == pytest.approx([0.5])


def test_custom_tokenizer() -> None:
    assert distinct_n([["abca"]], 1, tokenize=list) == pytest.approx([3 / 4])


# --- BLEU / self-BLEU ----------------------------------------------------------------------------

words = str.split


def test_bleu_textbook_example() -> None:
    hyp = words("the cat sat on the mat")
    ref = words("the cat is on the mat")
    # p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0/3 -> ε/3 = 0.1/3; equal lengths -> BP = 1.
    assert bleu(hyp, [ref]) == pytest.approx((5 / 6 * 3 / 5 * 1 / 4 * 0.1 / 3) ** 0.25)


def test_bleu_clipping_and_brevity_penalty() -> None:
    # Clipping: 'the' counts once. p1 = 1/4, p2 = ε/3, p3 = ε/2, p4 = ε/1; c = 4 > r = 2 -> BP = 1.
    got = bleu(words("the the the the"), [words("the cat")])
    assert got == pytest.approx((1 / 4 * 0.1 / 3 * 0.1 / 2 * 0.1) ** 0.25)
    # Short hypothesis: p1 = p2 = 1, no 3-/4-grams -> ε/1 each; BP = exp(1 − 4/2).
    got = bleu(words("the cat"), [words("the cat sat on")])
    assert got == pytest.approx(math.exp(1 - 4 / 2) * (0.1 * 0.1) ** 0.25)


def test_bleu_multi_reference_and_closest_length_tie() -> None:
    # Counts clip against the max over references; lengths 2 and 4 are equally close to 3: the
    # shorter wins, so c = 3 > r = 2 and BP = 1. p1 = p2 = p3 = 1, p4 = ε.
    got = bleu(words("a b c"), [words("a b"), words("a b c d")])
    assert got == pytest.approx(0.1**0.25)


def test_bleu_zero_cases() -> None:
    assert bleu(words("x y"), [words("a b")]) == 0.0  # no unigram match
    assert bleu([], [words("a b")]) == 0.0
    assert bleu(words("a b c d"), [words("a b c d")]) == pytest.approx(1.0)


def test_self_bleu_by_hand() -> None:
    assert self_bleu([["a b c d", "a b c d"]]) == pytest.approx([1.0])
    assert self_bleu([["a b", "c d"]]) == pytest.approx([0.0])
    # Two identical samples score 1 each (the twin is a reference), the odd one out scores 0.
    assert self_bleu([["a b c d", "a b c d", "e f g h"]]) == pytest.approx([2 / 3])
    assert math.isnan(self_bleu([["only one"]])[0])


def test_self_bleu_equals_bleu_against_the_others() -> None:
    # self_bleu clips with a shared top-2 count table; it must agree with plain ``bleu`` per sample,
    # including n-grams whose largest count is shared by two samples (small vocabulary: many repeats).
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(2, 7))
        samples = [" ".join(rng.choice(list("abc"), size=rng.integers(0, 9))) for _ in range(k)]
        tokens = [s.split() for s in samples]
        expected = np.mean([bleu(t, tokens[:i] + tokens[i + 1 :]) for i, t in enumerate(tokens)])
        assert self_bleu([samples])[0] == pytest.approx(expected, abs=1e-12)


# --- SBERT diversity -----------------------------------------------------------------------------

VECTORS = {"x": [1.0, 0.0], "y": [0.0, 2.0], "z": [1.0, 1.0]}


def fake_encoder(texts: list[str]) -> np.ndarray:
    fake_encoder.calls += 1  # type: ignore[attr-defined]
    return np.array([VECTORS[t] for t in texts])


def test_sbert_diversity_by_hand() -> None:
    fake_encoder.calls = 0  # type: ignore[attr-defined]
    got = sbert_diversity([["x", "y", "z"], ["x", "x"], ["y"]], fake_encoder)
    # cos(x, y) = 0, cos(x, z) = cos(y, z) = 1/√2 (the norm of y does not matter).
    assert got[0] == pytest.approx(1 - (2 / math.sqrt(2)) / 3)
    assert got[1] == pytest.approx(0.0)
    assert math.isnan(got[2])
    assert fake_encoder.calls == 1  # one batched call for all prompts


def test_minilm_encoder_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encode = minilm_encoder(device="cpu")
    same = "The cat sat on the mat."
    got = sbert_diversity(
        [[same, same], ["The cat sat on the mat.", "Quarterly revenue grew by four percent."], ["", ""]],
        encode,
    )
    assert got[0] == pytest.approx(0.0, abs=1e-5)
    assert got[1] > 0.5
    assert got[2] == pytest.approx(0.0, abs=1e-5)  # empty strings embed to the same vector


# --- NLI diversity -------------------------------------------------------------------------------

# (premise, hypothesis) -> (P(entail), P(contradict)); note the asymmetry of a/b.
NLI_TABLE = {
    ("a", "b"): (0.9, 0.0),
    ("b", "a"): (0.5, 0.1),
    ("a", "c"): (0.0, 1.0),
    ("c", "a"): (0.0, 1.0),
    ("b", "c"): (0.2, 0.2),
    ("c", "b"): (0.3, 0.1),
}


def fake_nli(premises: list[str], hypotheses: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rows = [
        NLI_TABLE.get((p, h), (1.0, 0.0) if p == h else (0.0, 0.0))
        for p, h in zip(premises, hypotheses, strict=True)
    ]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def test_nli_diversity_by_hand() -> None:
    got = nli_diversity([["a", "b", "c"], ["a", "a", "a"], ["a", "c"], ["b"]], fake_nli)
    s_ab = 0.5 * ((0.9 - 0.0) + (0.5 - 0.1))
    s_ac = -1.0
    s_bc = 0.5 * ((0.2 - 0.2) + (0.3 - 0.1))
    assert got[0] == pytest.approx(1 - (s_ab + s_ac + s_bc) / 3)
    assert got[1] == pytest.approx(0.0)  # all entail each other
    assert got[2] == pytest.approx(2.0)  # contradiction both ways
    assert math.isnan(got[3])


def _tiny_nli_checkpoint(path: Path, id2label: dict[int, str]) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = ["a", "b", "c", "cat", "dog"]
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, **{w: i + 4 for i, w in enumerate(words)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    ).save_pretrained(path)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(cfg).save_pretrained(path)


def test_hf_nli_fn_reads_labels_by_name(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _tiny_nli_checkpoint(tmp_path, {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"})
    nli = hf_nli_fn(str(tmp_path), device="cpu", batch_size=2)
    premises, hypotheses = ["a cat", "b", "dog dog c"], ["b", "a cat dog", "c"]
    p_entail, p_contradict = nli(premises, hypotheses)

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    tok = AutoTokenizer.from_pretrained(tmp_path)
    with torch.no_grad():
        probs = model(**tok(premises, hypotheses, padding=True, return_tensors="pt")).logits.softmax(-1)
    assert p_entail == pytest.approx(probs[:, 2].numpy(), abs=1e-5)
    assert p_contradict == pytest.approx(probs[:, 0].numpy(), abs=1e-5)
    assert nli([], [])[0].shape == (0,)
    assert nli_diversity([["a cat", "dog", "c"]], nli)[0] == pytest.approx(
        nli_diversity([["a cat", "dog", "c"]], hf_nli_fn(str(tmp_path), device="cpu", batch_size=64))[0]
    )


def test_hf_nli_fn_refuses_unnamed_labels(tmp_path: Path) -> None:
    for name, id2label in {
        "generic": {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
        "two_way": {0: "entailment", 1: "not_entailment"},
    }.items():
        _tiny_nli_checkpoint(tmp_path / name, id2label)
        with pytest.raises(ValueError, match="id2label"):
            hf_nli_fn(str(tmp_path / name), device="cpu")


# --- report --------------------------------------------------------------------------------------


def test_diversity_report() -> None:
    samples = [["x", "y", "z"], ["x", "x"], [""]]
    plain = diversity_report(samples, vocab_size=800)
    assert set(plain) == {"ead", "distinct_1", "distinct_2", "self_bleu"}
    # The third prompt (one empty sample) is undefined for every metric and left out.
    assert plain["distinct_1"] == pytest.approx((1.0 + 0.5) / 2)
    # ["x", "x"]: each one-word sample matches its twin at n = 1 and has no 2-/3-/4-grams, each
    # smoothed to ε = 0.1, so BLEU = (1 · 0.1³)^(1/4) (see ``bleu``); ["x", "y", "z"] scores 0.
    assert plain["self_bleu"] == pytest.approx((0.0 + 0.1**0.75) / 2)
    assert plain["ead"] == pytest.approx(np.nanmean(ead(samples, 800)))
    assert math.isnan(plain["distinct_2"])  # single-word samples have no bigrams anywhere

    fake_encoder.calls = 0  # type: ignore[attr-defined]
    full = diversity_report(samples[:2], vocab_size=800, encoder=fake_encoder, nli_fn=fake_nli)
    assert full["sbert_diversity"] == pytest.approx(np.mean(sbert_diversity(samples[:2], fake_encoder)))
    assert full["nli_diversity"] == pytest.approx(np.mean(nli_diversity(samples[:2], fake_nli)))
