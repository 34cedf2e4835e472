"""Packed (prompt-shared) batches must give exactly the numbers of ordinary padded rows."""

from __future__ import annotations

import torch
from conftest import make_model
from transformers import LlamaForSequenceClassification

from prefshift.training.logprobs import last_token_scores, sequence_logps
from prefshift.training.packing import pack


def _random_rows(seed: int, k: int):
    g = torch.Generator().manual_seed(seed)
    prompts = [
        torch.randint(3, 60, (int(n),), generator=g).tolist() for n in torch.randint(1, 10, (5,), generator=g)
    ]
    comps = [
        [
            torch.randint(3, 60, (int(n),), generator=g).tolist()
            for n in torch.randint(1, 8, (k,), generator=g)
        ]
        for _ in prompts
    ]
    return prompts, comps


def _padded_logps(model, prompts, comps):
    """Independent path: each (prompt, completion) as its own right-padded row through model(...).logits."""
    seqs = [(p, c) for p, cs in zip(prompts, comps, strict=True) for c in cs]
    width = max(len(p) + len(c) for p, c in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, (p, c) in enumerate(seqs):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        mask[i, : len(p) + len(c)] = 1
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
    out = []
    for i, (p, c) in enumerate(seqs):
        pos = torch.arange(len(p) - 1, len(p) + len(c) - 1)
        out.append(logp[i, pos, torch.tensor(c)].sum())
    return torch.stack(out).view(len(prompts), -1)


def test_packed_equals_padded_fp32() -> None:
    model = make_model().eval()
    for k in (1, 2, 3):
        prompts, comps = _random_rows(k, k)
        packed = sequence_logps(model, pack(prompts, comps, pad_token_id=0))
        expected = _padded_logps(model, prompts, comps)
        torch.testing.assert_close(packed.logps, expected, atol=1e-4, rtol=1e-5)
        lengths = torch.tensor([[len(c) for c in cs] for cs in comps], dtype=torch.float32)
        torch.testing.assert_close(packed.lengths, lengths)


def test_packed_gradients_equal_padded() -> None:
    model = make_model()
    prompts, comps = _random_rows(7, 2)
    sequence_logps(model, pack(prompts, comps, 0)).logps.sum().backward()
    g_packed = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    _padded_logps(model, prompts, comps).sum().backward()
    for a, b in zip(g_packed, (p.grad for p in model.parameters()), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_eager_attention_matches_sdpa() -> None:
    model = make_model().eval()
    prompts, comps = _random_rows(3, 2)
    batch = pack(prompts, comps, 0)
    sdpa = sequence_logps(model, batch).logps
    model.config._attn_implementation = "eager"
    torch.testing.assert_close(sequence_logps(model, batch).logps, sdpa, atol=1e-4, rtol=1e-5)


def test_completions_do_not_see_each_other() -> None:
    model = make_model().eval()
    prompts, comps = _random_rows(11, 2)
    base = sequence_logps(model, pack(prompts, comps, 0)).logps[:, 0]
    changed = [[c[0], [5] * (len(c[1]) + 3)] for c in comps]
    torch.testing.assert_close(sequence_logps(model, pack(prompts, changed, 0)).logps[:, 0], base)


def test_last_token_scores_read_last_completion_token() -> None:
    torch.manual_seed(0)
    src = make_model()
    cfg = src.config
    cfg.num_labels = 1
    model = LlamaForSequenceClassification(cfg).eval()
    prompts, comps = _random_rows(5, 2)
    batch = pack(prompts, comps, 0)
    scores = last_token_scores(model, batch)
    for b, (p, cs) in enumerate(zip(prompts, comps, strict=True)):
        for j, c in enumerate(cs):
            h = model.model(input_ids=torch.tensor([p + c])).last_hidden_state[0, -1]
            expected = model.score(h).squeeze(-1)
            torch.testing.assert_close(scores[b, j], expected, atol=1e-4, rtol=1e-4)
    # and it agrees with the model's own sequence-classification forward on an unpadded row
    p, c = prompts[0], comps[0][1]
    own = model(input_ids=torch.tensor([p + c])).logits[0, 0]
    torch.testing.assert_close(scores[0, 1], own, atol=1e-4, rtol=1e-4)
