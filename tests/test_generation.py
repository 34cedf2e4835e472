"""Correctness of the sampling engine on a tiny random Llama (fp32 unless stated)."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from prefshift.generation import Samples, SamplingParams, TransformersSampler, engine, get_sampler
from prefshift.generation.engine import _DecodeState, _plan_batches

VOCAB = 97
PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [15, 16, 17, 18, 19]]  # different lengths -> left padding
LIKELY, ALSO_LIKELY = 38, 63  # ~5 % and ~4 % of the tiny model's samples: used as EOS / stop tokens


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread: the tiny model's ops are too small to split, and on a shared CPU a second
    OpenMP thread waiting for a busy core turns every op into a scheduler time slice (tests went
    from ~2 s to ~70 s under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(eos_token_id: int | None = None) -> LlamaForCausalLM:
    """2 layers, hidden 64, grouped-query attention; lm_head scaled so the next-token distribution is
    peaked (entropy ~3 nats instead of ~ln 97) and top-k / top-p actually change it."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    model.generation_config.eos_token_id = eos_token_id
    return model


def expected_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Reference sampling distribution, written independently of the engine (sort-based)."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    order = torch.argsort(probs, descending=True)
    keep = torch.zeros_like(probs, dtype=torch.bool)
    mass = 0.0
    for rank, token in enumerate(order.tolist()):
        if (top_k and rank >= top_k) or mass >= top_p:
            break
        keep[token] = True
        mass += probs[token].item() / probs[order[: top_k or len(order)]].sum().item()
    probs = torch.where(keep, probs, 0.0)
    return probs / probs.sum()


def chi2_critical(df: int, z: float = 3.0902) -> float:
    """Upper chi-square quantile by the Wilson-Hilferty cube approximation (z = 3.09: alpha = 1e-3)."""
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 10, 1.0), (0.8, 0, 0.6), (1.3, 20, 0.9)],
)
def test_samples_follow_the_processed_distribution(temperature: float, top_k: int, top_p: float) -> None:
    model = tiny_model()
    prompt = [3, 4, 5]
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0, -1]
    probs = expected_probs(logits, temperature, top_k, top_p)
    draws = 4000
    params = SamplingParams(
        n=draws, temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=1, seed=7
    )
    out = TransformersSampler(model, precision="fp32").generate([prompt], params)
    counts = torch.bincount(torch.tensor([s.token_ids[0] for s in out]), minlength=VOCAB).double()

    assert counts[probs == 0].sum() == 0, "sampled a token that top-k/top-p filtered out"
    expected = probs * draws
    big = expected >= 5  # chi-square needs expected counts >= 5; pool the rest into one bin
    observed_bins = torch.cat([counts[big], counts[~big & (probs > 0)].sum().reshape(1)])
    expected_bins = torch.cat([expected[big], expected[~big & (probs > 0)].sum().reshape(1)])
    if expected_bins[-1] < 5:  # pooled tail too small: fold it into the smallest bin
        observed_bins[-2] += observed_bins[-1]
        expected_bins[-2] += expected_bins[-1]
        observed_bins, expected_bins = observed_bins[:-1], expected_bins[:-1]
    statistic = (((observed_bins - expected_bins) ** 2) / expected_bins).sum().item()
    df = len(expected_bins) - 1
    assert df >= 3
    assert statistic < chi2_critical(df), f"chi2={statistic:.1f} with df={df}"


def hf_greedy(model: LlamaForCausalLM, prompt: list[int], max_new_tokens: int) -> list[int]:
    """HF reference on the unpadded prompt, cut after the first EOS (HF pads after it)."""
    out = model.generate(
        torch.tensor([prompt]), do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=0
    )[0, len(prompt) :].tolist()
    eos = model.generation_config.eos_token_id
    return out[: out.index(eos) + 1] if eos in out else out


def test_greedy_matches_hf_generate_with_left_padding_and_eos() -> None:
    # Choose as EOS a token that greedy decoding of the first prompt emits mid-sequence, so at
    # least one row stops early while the others keep going (exercises row dropping too).
    free = TransformersSampler(tiny_model(), precision="fp32").generate(
        PROMPTS, SamplingParams(temperature=0, max_new_tokens=16)
    )
    eos = free[0].token_ids[5]
    model = tiny_model(eos_token_id=eos)
    # max_batch_size=2: the three prompts span two decode batches.
    sampler = TransformersSampler(model, precision="fp32", max_batch_size=2)
    out = sampler.generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=16))
    assert out[0].finished and out[0].token_ids[-1] == eos
    assert model.config._attn_implementation == "sdpa"  # the engine's attention swap is undone
    for i, prompt in enumerate(PROMPTS):
        assert out[i].token_ids == hf_greedy(model, prompt, 16), f"prompt {i}"


def test_logprobs_match_a_full_forward_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    compactions = []
    keep = _DecodeState.keep
    monkeypatch.setattr(
        _DecodeState, "keep", lambda self, index: compactions.append(index) or keep(self, index)
    )
    model = tiny_model(eos_token_id=LIKELY)  # some rows finish early and are dropped
    params = SamplingParams(n=6, temperature=0.8, top_k=20, max_new_tokens=20, seed=3, return_logprobs=True)
    out = TransformersSampler(model, precision="fp32").generate(PROMPTS, params)
    assert any(s.finished for s in out) and not all(s.finished for s in out)
    assert compactions, "finished rows were never dropped: the compacted-cache path is untested"
    with torch.no_grad():
        for s in out:
            prompt = PROMPTS[s.prompt_index]
            logits = model(torch.tensor([prompt + s.token_ids])).logits[0, len(prompt) - 1 : -1]
            reference = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(s.token_ids)[:, None])[:, 0]
            torch.testing.assert_close(torch.tensor(s.logprobs), reference, atol=1e-4, rtol=0)


def test_last_layer_prefill_skip_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last layer prefills the last prompt position only (its K/V for the others come from the
    pre-hook): greedy tokens and log-probs must equal those of the full prefill, with left padding."""
    model = tiny_model(eos_token_id=LIKELY)
    last = model.model.layers[-1]
    mlp_lengths: list[int] = []
    last.mlp.register_forward_hook(lambda module, args, out: mlp_lengths.append(args[0].shape[1]))
    cases = [
        SamplingParams(n=2, temperature=0, max_new_tokens=12, return_logprobs=True),
        SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=4, return_logprobs=True),
    ]
    skipped = [TransformersSampler(model, precision="fp32").generate(PROMPTS, p) for p in cases]
    assert mlp_lengths and max(mlp_lengths) == 1, "the last layer's MLP ran on prompt positions"
    assert not last._forward_pre_hooks, "the pre-hook outlived the call"

    monkeypatch.setattr(engine, "_LLAMA_LIKE_LAYERS", ())
    mlp_lengths.clear()
    full = [TransformersSampler(model, precision="fp32").generate(PROMPTS, p) for p in cases]
    assert max(mlp_lengths) > 1
    for fast, reference in zip(skipped, full, strict=True):
        assert fast.token_ids() == reference.token_ids()
        for a, b in zip(fast, reference, strict=True):
            torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["qwen2", "mistral"])
def test_greedy_matches_hf_generate_on_other_llama_like_families(family: str) -> None:
    """Qwen2 (biased q/k/v projections) and Mistral also get the last-layer prefill skip."""
    torch.manual_seed(0)
    shape = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    if family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**shape, use_sliding_window=False)).eval()
    else:
        model = MistralForCausalLM(MistralConfig(**shape, sliding_window=None)).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    model.generation_config.eos_token_id = None
    mlp_lengths: list[int] = []
    model.model.layers[-1].mlp.register_forward_hook(
        lambda module, args, out: mlp_lengths.append(args[0].shape[1])
    )
    out = TransformersSampler(model, precision="fp32").generate(
        PROMPTS, SamplingParams(temperature=0, max_new_tokens=10)
    )
    assert max(mlp_lengths) == 1, "the last-layer prefill skip was not applied"
    for i, prompt in enumerate(PROMPTS):
        assert out[i].token_ids == hf_greedy(model, prompt, 10), f"prompt {i}"


def test_seeds_and_prefix_sharing() -> None:
    sampler = TransformersSampler(tiny_model(), precision="fp32")
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=11)
    first, again = sampler.generate(PROMPTS, params), sampler.generate(PROMPTS, params)
    other = sampler.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=12))
    assert first.token_ids() == again.token_ids()
    assert first.token_ids() != other.token_ids()
    # Samples of one prompt differ from each other (the KV copies do not share randomness).
    assert len({tuple(s.token_ids) for s in first.by_prompt()[0]}) > 1

    greedy = SamplingParams(n=4, temperature=0, max_new_tokens=12)
    shared = sampler.generate([PROMPTS[0]], greedy)
    copies = sampler.generate([PROMPTS[0]] * 4, SamplingParams(temperature=0, max_new_tokens=12))
    assert shared.token_ids() == copies.token_ids()


def test_finished_rows_stop_at_eos() -> None:
    eos, stop = LIKELY, ALSO_LIKELY
    model = tiny_model(eos_token_id=eos)
    params = SamplingParams(n=16, temperature=1.0, max_new_tokens=24, seed=5, stop_token_ids=[stop])
    out = TransformersSampler(model, precision="fp32").generate(PROMPTS, params)
    assert isinstance(out, Samples) and len(out) == 3 * 16
    assert [len(group) for group in out.by_prompt()] == [16, 16, 16]
    assert sum(s.finished for s in out) >= 5
    for s in out:
        ends = [k for k, tok in enumerate(s.token_ids) if tok in (eos, stop)]
        if s.finished:
            assert ends == [len(s.token_ids) - 1], "nothing may follow the stop token"
        else:
            assert ends == [] and len(s.token_ids) == params.max_new_tokens


def test_string_prompts_and_text() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(VOCAB)]
    words[0], words[LIKELY] = "<pad>", "</s>"
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>")
    sampler = get_sampler(tiny_model(), tokenizer, precision="fp32")
    assert isinstance(sampler, TransformersSampler) and sampler.eos_token_ids == (LIKELY,)
    out = sampler.generate(["w5 w6 w7", "w8"], SamplingParams(n=8, max_new_tokens=30, seed=0))
    assert out.precision == "fp32" and out.backend == "transformers"
    for s in out:
        body = s.token_ids[:-1] if s.finished else s.token_ids
        assert s.text == tokenizer.decode(body, skip_special_tokens=True)
        assert "</s>" not in s.text
    assert any(s.finished for s in out)


def test_bf16_precision_is_recorded() -> None:
    out = TransformersSampler(tiny_model(), precision="bf16").generate(
        PROMPTS, SamplingParams(n=2, max_new_tokens=8, seed=0, return_logprobs=True)
    )
    assert out.precision == "bf16"
    assert all(len(s.token_ids) == 8 and len(s.logprobs) == 8 for s in out)


def test_failed_compile_falls_back_to_eager(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_compile(fn: object, **kwargs: object) -> object:
        def run(*args: object, **kw: object) -> object:
            raise RuntimeError("no compiler")

        return run

    greedy = SamplingParams(temperature=0, max_new_tokens=10)
    model = tiny_model()
    eager = TransformersSampler(model, precision="fp32", compile=False).generate(PROMPTS, greedy)
    monkeypatch.setattr(torch, "compile", broken_compile)
    with caplog.at_level("WARNING"):
        fallback = TransformersSampler(model, precision="fp32", compile=True).generate(PROMPTS, greedy)
    assert "falling back to eager" in caplog.text
    assert fallback.token_ids() == eager.token_ids()


@pytest.mark.skipif(not engine._PREPACK_AVAILABLE, reason="needs oneDNN")
def test_prepacked_bf16_weights_give_the_same_samples_and_are_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=10, seed=5, return_logprobs=True)
    model = tiny_model()
    packed_calls = []
    original = engine._packed_linear

    def counting(*args: object, **kwargs: object) -> torch.Tensor:
        packed_calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "_packed_linear", counting)
    packed = TransformersSampler(model, precision="bf16").generate(PROMPTS, params)
    assert packed_calls  # the packed path ran
    assert not any("forward" in m.__dict__ for m in model.modules())  # and was undone
    monkeypatch.setattr(engine, "_PREPACK_AVAILABLE", False)
    plain = TransformersSampler(model, precision="bf16").generate(PROMPTS, params)
    assert packed.token_ids() == plain.token_ids()
    assert [s.logprobs for s in packed] == [s.logprobs for s in plain]


class _SubclassedLinear(torch.nn.Linear):
    """A linear the engine cannot switch to its low-precision weights (not an exact ``nn.Linear``)."""


@pytest.mark.skipif(not engine._PREPACK_AVAILABLE, reason="needs oneDNN")
@pytest.mark.parametrize("switchable", [True, False])
def test_autocast_is_left_off_only_when_every_linear_is_switched(
    monkeypatch: pytest.MonkeyPatch, switchable: bool
) -> None:
    """bf16 on CPU: with every linear on the call's bf16 weights autocast has nothing to cast and
    the call runs without it, under inference_mode; one linear the engine cannot switch keeps
    autocast on (under no_grad), or that linear would silently run in fp32. Either way the
    samples are those of plain autocast."""
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=3, return_logprobs=True)
    model = tiny_model()
    mlp = model.model.layers[0].mlp
    if not switchable:
        down = _SubclassedLinear(mlp.down_proj.in_features, mlp.down_proj.out_features, bias=False)
        down.load_state_dict(mlp.down_proj.state_dict())
        mlp.down_proj = down
    seen = []
    hook = mlp.register_forward_hook(
        lambda *_: seen.append((torch.is_autocast_enabled("cpu"), torch.is_inference_mode_enabled()))
    )
    out = TransformersSampler(model, precision="bf16").generate(PROMPTS, params)
    hook.remove()
    assert set(seen) == ({(False, True)} if switchable else {(True, False)})
    monkeypatch.setattr(engine, "_PREPACK_AVAILABLE", False)  # plain autocast: every linear under it
    reference = TransformersSampler(model, precision="bf16").generate(PROMPTS, params)
    assert out.token_ids() == reference.token_ids()
    assert [s.logprobs for s in out] == [s.logprobs for s in reference]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sdpa_and_matmul_decode_attention_agree(monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    """The two single-query attention kernels (chosen by CPU) give the same samples; in fp32 the
    log-probs agree to 1e-5, in bf16 to bf16 rounding."""
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=10, seed=4, return_logprobs=True)
    model = tiny_model()
    out = {}
    for sdpa in (True, False):
        monkeypatch.setattr(engine, "_SDPA_ON_CPU", sdpa)
        out[sdpa] = TransformersSampler(model, precision=precision).generate(PROMPTS, params)
    tolerance = 1e-5 if precision == "fp32" else 0.1
    if precision == "fp32":
        assert out[True].token_ids() == out[False].token_ids()
    for a, b in zip(out[True], out[False], strict=True):
        if a.token_ids == b.token_ids:
            assert a.logprobs == pytest.approx(b.logprobs, abs=tolerance)
    same = sum(a.token_ids == b.token_ids for a, b in zip(out[True], out[False], strict=True))
    assert same >= len(PROMPTS)  # bf16 rounding may flip a late draw, not most of them


@pytest.mark.parametrize("q_len", [1, 5], ids=["decode", "prefill"])
def test_matmul_attention_matches_sdpa(q_len: int) -> None:
    """The matmul kernel against PyTorch's SDPA on grouped-query heads with a causal, left-padded
    additive mask (the engine's prefill and decode masks): the same output to 1e-5 in fp32."""
    torch.manual_seed(0)
    rows, heads, kv_heads, keys, dim = 3, 6, 2, 7, 8
    query = torch.randn(rows, heads, q_len, dim)
    key, value = torch.randn(2, rows, kv_heads, keys, dim)
    visible = torch.ones(q_len, keys, dtype=torch.bool).tril(keys - q_len)[None].repeat(rows, 1, 1)
    visible[1, :, :2] = False  # row 1 is left-padded by two positions
    visible[1, :, -q_len:] |= torch.eye(q_len, dtype=torch.bool)  # padding queries see themselves
    mask = torch.zeros(rows, 1, q_len, keys).masked_fill_(~visible[:, None], torch.finfo(torch.float32).min)
    out = engine._matmul_attention(query, key, value, mask, 0.3)
    groups = heads // kv_heads
    expected = F.scaled_dot_product_attention(
        query, key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1), attn_mask=mask, scale=0.3
    ).transpose(1, 2)
    assert out.shape == (rows, q_len, heads, dim)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not engine._PREPACK_AVAILABLE, reason="needs oneDNN")
def test_packed_weights_follow_an_optimizer_step_between_calls() -> None:
    """A sampler reused across training steps samples the current weights, exactly as a fresh model
    would. Fused AdamW (the trainers' optimizer) updates parameters without bumping their version
    counter, so no weight cache keyed on versions may survive between calls."""
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=10, seed=5, return_logprobs=True)
    model = tiny_model()
    sampler = TransformersSampler(model, precision="bf16")
    before = sampler.generate(PROMPTS, params)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    after = sampler.generate(PROMPTS, params)
    fresh = tiny_model()
    fresh.load_state_dict(model.state_dict())
    expected = TransformersSampler(fresh, precision="bf16").generate(PROMPTS, params)
    assert after.token_ids() == expected.token_ids() != before.token_ids()
    assert [s.logprobs for s in after] == [s.logprobs for s in expected]


def test_merge_duplicates_pass_merges_identical_pure_nodes_only() -> None:
    aten = torch.ops.aten
    graph = torch.fx.Graph()
    x, w = graph.placeholder("x"), graph.placeholder("w")
    wt = [graph.call_function(aten.permute.default, (w, [1, 0])) for _ in range(2)]
    products = [graph.call_function(aten.mm.default, (x, t)) for t in wt]
    noise = [graph.call_function(aten.rand_like.default, (products[0],)) for _ in range(2)]  # kept apart
    total = graph.call_function(aten.add.Tensor, (products[0], products[1]))
    total = graph.call_function(aten.add.Tensor, (total, noise[0]))
    total = graph.call_function(aten.add.Tensor, (total, noise[1]))
    returned = graph.call_function(aten.mm.default, (x, wt[0]))  # a graph output keeps its own node
    graph.output((total, returned))
    module = torch.fx.GraphModule(torch.nn.Module(), graph)
    inputs = torch.randn(3, 4), torch.randn(5, 4)
    torch.manual_seed(0)
    before = module(*inputs)
    engine._MergeDuplicates()(graph)
    module.recompile()
    targets = [node.target for node in graph.nodes if node.op == "call_function"]
    assert targets.count(aten.permute.default) == 1
    assert targets.count(aten.mm.default) == 2  # the two summed products merged; the output kept
    assert targets.count(aten.rand_like.default) == 2
    torch.manual_seed(0)
    after = module(*inputs)
    torch.testing.assert_close(after, before)


def test_linears_that_share_an_input_are_grouped_and_each_computes_its_own_projection() -> None:
    """Q/K/V and gate/up run on one concatenated bf16 weight each (one GEMM), eager and compiled;
    every member still returns its own projection, and the modules are restored afterwards."""
    model = tiny_model()
    layer = model.model.layers[0]
    modules = [*model.model.modules(), model.lm_head]
    groups = engine._linear_groups(modules)
    attn, mlp = layer.self_attn, layer.mlp
    assert [attn.q_proj, attn.k_proj, attn.v_proj] in groups
    assert [mlp.gate_proj, mlp.up_proj] in groups
    assert [attn.o_proj] in groups and [mlp.down_proj] in groups and [model.lm_head] in groups
    assert len(groups) == 2 * 4 + 1  # every linear exactly once
    group = [attn.q_proj, attn.k_proj, attn.v_proj]
    hidden = torch.randn(5, 64)
    expected = [F.linear(hidden.bfloat16(), module.weight.bfloat16()) for module in group]

    def check(outputs: list[torch.Tensor]) -> None:
        for output, reference in zip(outputs, expected[-len(outputs) :], strict=True):
            torch.testing.assert_close(output, reference, atol=0, rtol=0)

    for compiled in (False, True):
        with engine._low_precision_linears(modules, torch.bfloat16, rows=5, compiled=compiled):
            assert (type(attn.q_proj) is engine._GroupedLinear) == compiled
            check([module(hidden) for module in group])
    assert all(type(module) is torch.nn.Linear and not module.__dict__.get("forward") for module in group)
    assert not any(hasattr(module, "_group_weight") for module in group)
    eager = engine._PackedGroup(group, torch.bfloat16, rows=5).forwards()
    eager[0](hidden)
    hidden.mul_(2)  # changed in place after the first member ran: the others must see it
    expected = [F.linear(hidden.bfloat16(), module.weight.bfloat16()) for module in group]
    check([forward(hidden) for forward in eager[1:]])


@pytest.mark.slow  # ~30 s of inductor compilation on a cold cache
def test_compiled_graph_serves_every_model_of_an_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    """A study samples many trained models: the decode graph compiled for the first must be reused
    for the next (no recompilation, so no recompile limit either), with that model's weights."""
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=10, seed=4, return_logprobs=True)
    first, second = tiny_model(), tiny_model()
    with torch.no_grad():
        for p in second.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    TransformersSampler(first, precision="bf16", compile=True).generate(PROMPTS, params)
    sampler = TransformersSampler(second, precision="bf16", compile=True)
    with torch.compiler.set_stance("fail_on_recompile"):
        compiled = sampler.generate(PROMPTS, params)
    assert sampler._compile  # the call above did not fail over to eager
    # Compiled and eager bf16 round differently, so the check is against the full-precision
    # log-probs of the samples drawn: close under the second model, far under the first.
    def error(model: LlamaForCausalLM) -> float:
        worst = 0.0
        with torch.no_grad():
            for s in compiled:
                prompt = PROMPTS[s.prompt_index]
                logits = model(torch.tensor([prompt + s.token_ids])).logits[0, len(prompt) - 1 : -1]
                logprobs = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(s.token_ids)[:, None])
                worst = max(worst, (logprobs[:, 0] - torch.tensor(s.logprobs)).abs().max().item())
        return worst

    assert error(second) < 0.2 < 2.0 < error(first)  # measured: 0.05 and 14


@pytest.mark.slow  # ~30 s of inductor compilation on a cold cache
def test_compiled_engine_drops_finished_rows_like_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards are skipped on repeated decode steps but checked after rows are dropped, where the
    shapes change: the compiled engine, whose steps also draw the next tokens (top-k, top-p and
    the inverse-CDF draw inside the graph), must give eager's samples."""
    compactions, skipped = [], []
    keep = _DecodeState.keep
    monkeypatch.setattr(
        _DecodeState, "keep", lambda self, index: compactions.append(index) or keep(self, index)
    )
    set_stance = torch.compiler.set_stance

    def recording(*args: object, **kwargs: object) -> object:
        skipped.append(kwargs.get("skip_guard_eval_unsafe"))
        return set_stance(*args, **kwargs)

    monkeypatch.setattr(torch.compiler, "set_stance", recording)
    model = tiny_model(eos_token_id=LIKELY)
    params = SamplingParams(n=6, temperature=0.8, top_k=20, top_p=0.9, max_new_tokens=20, seed=3, return_logprobs=True)
    eager = TransformersSampler(model, precision="fp32", compile=False).generate(PROMPTS, params)
    eager_compactions = len(compactions)
    sampler = TransformersSampler(model, precision="fp32", compile=True)
    compiled = sampler.generate(PROMPTS, params)
    assert sampler._compile  # no fallback to eager
    assert len(compactions) > eager_compactions > 0 and skipped and all(skipped)
    assert compiled.token_ids() == eager.token_ids()
    for a, b in zip(compiled, eager, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


@pytest.mark.slow  # ~30 s of inductor compilation on a cold cache
def test_compiled_bf16_engine_samples_updated_weights() -> None:
    """The compiled path keeps bf16 copies of the weights that its graph closes over; after an
    in-place update it must sample the new weights (online RL), and it must not recompile."""
    params = SamplingParams(n=2, temperature=0, max_new_tokens=10)
    model = tiny_model()
    sampler = TransformersSampler(model, precision="bf16", compile=True)
    before = sampler.generate(PROMPTS, params)
    with torch.no_grad():  # shift every token id by one, through a new tensor (no version bump needed)
        model.lm_head.weight.data = model.lm_head.weight.roll(1, dims=0)
    after = sampler.generate(PROMPTS, params)
    assert after.token_ids() != before.token_ids()
    assert [s.token_ids[0] for s in after] == [(s.token_ids[0] + 1) % VOCAB for s in before]
    # A grouped projection (V, one of the rows of the Q/K/V copy) updated in place: the samples
    # must be those of a fresh compiled sampler over a copy of the updated model.
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.v_proj.weight.mul_(-3)
    updated = sampler.generate(PROMPTS, params)
    assert updated.token_ids() != after.token_ids()
    fresh = TransformersSampler(copy.deepcopy(model), precision="bf16", compile=True).generate(PROMPTS, params)
    assert updated.token_ids() == fresh.token_ids()
    assert sampler._compile  # no fallback to eager


@pytest.mark.slow  # ~30 s of inductor compilation on a cold cache
@pytest.mark.parametrize("sdpa", [False, True], ids=["matmul-attention", "sdpa-attention"])
def test_compiled_engine_matches_eager_in_one_graph_per_phase(
    monkeypatch: pytest.MonkeyPatch, sdpa: bool
) -> None:
    calls = []
    original = engine._matmul_attention

    def counting(*args: torch.Tensor | float) -> torch.Tensor:
        calls.append(torch.compiler.is_compiling())
        return original(*args)

    monkeypatch.setattr(engine, "_matmul_attention", counting)
    monkeypatch.setattr(engine, "_SDPA_ON_CPU", sdpa)  # both CPU attention kernels, whatever the CPU
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=10, seed=3, return_logprobs=True)
    model = tiny_model()
    eager = TransformersSampler(model, precision="fp32", compile=False).generate(PROMPTS, params)
    eager_calls = len(calls)
    sampler = TransformersSampler(model, precision="fp32", compile=True)
    compiled = sampler.generate(PROMPTS, params)
    assert sampler._compile  # both phases compiled as whole graphs (fullgraph=True): no fallback
    assert compiled.token_ids() == eager.token_ids()
    for a, b in zip(compiled, eager, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    if sdpa:
        assert not calls  # SDPA runs every attention, in both modes
    else:
        # the attention was traced into the graph (inductor code), never run eagerly in a compiled step
        assert len(calls) > eager_calls and all(calls[eager_calls:])


def test_realized_is_the_identity() -> None:
    x = torch.randn(3, 4, 1, 8).transpose(1, 2)[:, 1:]  # a strided view with a storage offset
    assert torch.equal(engine._realized(x), x)
    assert engine._realized(x).stride() == x.stride()


def test_batch_size_follows_the_kv_budget() -> None:
    model = tiny_model()
    # 2 layers x 2 kv heads x 16 head dim x (keys + values) x 4 bytes = 512 bytes per cached token.
    sampler = TransformersSampler(model, precision="fp32", kv_cache_budget_bytes=512 * 20 * 3)
    assert sampler.rows_per_batch(max_prompt_len=12, max_new_tokens=8) == 3
    assert TransformersSampler(model, precision="fp32", max_batch_size=2).rows_per_batch(12, 8) == 2
    batches = _plan_batches([2, 5, 3], n=2, max_rows=4)
    assert batches == [[(1, 0), (1, 1), (2, 0), (2, 1)], [(0, 0), (0, 1)]]
    greedy = SamplingParams(n=2, temperature=0, max_new_tokens=8)
    assert (
        sampler.generate(PROMPTS, greedy).token_ids()
        == TransformersSampler(model, precision="fp32").generate(PROMPTS, greedy).token_ids()
    )


def test_vllm_backend_needs_a_path() -> None:
    with pytest.raises(ValueError, match="path"):
        get_sampler(tiny_model(), backend="vllm")
