"""Fast sampling with a transformers causal LM, without ``model.generate``.

Why not ``generate``: for the small policies of a study (a few million to a few hundred million
parameters) on CPU, ``generate``'s per-step machinery (stopping criteria, logits processors, a
``DynamicCache`` that grows by concatenation, masks rebuilt every step, ``torch.multinomial``)
costs more than the model forward itself. This engine keeps the model's own forward and
transformers' cache classes and removes everything else from the step:

* each prompt is prefilled once (in 1-2k-token chunks) and its KV copied to its ``n`` rows of a
  preallocated ``StaticCache`` (prefix sharing);
* prompts are left-padded; the attention mask is a preallocated 4-D tensor updated in place (one
  column per step) and handed to the model as is, so no mask is rebuilt per step; position ids
  are per row (``prompt_len + step``) so padding does not shift positions;
* the decoder (``model.get_decoder()``) runs on the new token only and ``lm_head`` on its last
  position; in the prefill, the last decoder layer of Llama-like models computes only the keys and
  values of the other prompt positions (see ``_last_layer_prefill_hook``);
* attention is the engine's own ``AttentionInterface`` function (see ``_attention``): on CPUs
  without AMX, single-query (decode) attention is a plain matmul-softmax-matmul, since PyTorch's
  CPU flash kernel, which ``sdpa`` picks, costs ~2 ms per layer per step in bf16 there for a
  64 x 96 cache, 8x the matmul version; with AMX (and on GPUs) the flash kernel is the faster one;
* sampling is inverse-CDF on one uniform per row (see :mod:`prefshift.generation.sampling`);
* rows that hit EOS are dropped from the batch when the compute saved outweighs the copy of the
  cache (see ``_COMPACTION_COST_STEPS``);
* ``precision="bf16"``: on CPU the linear weights are cast and reordered into oneDNN's blocked
  layout once per call (see ``_low_precision_linears``), which leaves autocast nothing to do, so
  the call runs without it and under ``inference_mode`` (see ``TransformersSampler._precision``);
  elsewhere it runs under ``torch.autocast`` (one context for the whole call, so the weight casts
  are cached across steps).
"""

from __future__ import annotations

import functools
import inspect
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files
from transformers import AttentionInterface, PreTrainedModel, StaticCache
from transformers.cache_utils import StaticLayer
from transformers.pytorch_utils import Conv1D

from prefshift.generation.params import SamplingParams
from prefshift.generation.results import Sample, Samples
from prefshift.generation.sampling import TokenChoice, select_tokens, uniforms

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "auto"]


def _cpu_has(capability: str) -> bool:
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.6
    return bool(get_capabilities and get_capabilities().get(capability))


#: Default KV-cache budget that sizes the decode batch (rows = budget // bytes per row).
DEFAULT_KV_CACHE_BUDGET_BYTES = 512 * 2**20

# Prefill runs in chunks of about this many tokens. On the AMD EPYC (AVX512-BF16, no AMX) 1024-token
# chunks were 15-20 % faster than one 4096-token forward on the benchmark model (the MLP activations
# of a chunk stay in L2 cache); on an Intel Xeon with AMX, whose tile matmuls gain more from large
# operands, a 64 x 64-token prefill took 83 ms in 1024-token chunks, 72 ms in 2048 and 72 ms in 4096.
_PREFILL_CHUNK_TOKENS = 2048 if _cpu_has("amx_bf16") else 1024

# Dropping finished rows copies the KV cache of the batch: measured 0.5-0.7 of a decode step on
# the benchmark model (bf16, 64-256 rows). Rows are dropped once (dead rows x remaining steps)
# exceeds this many full-batch steps, so a drop always pays for itself.
_COMPACTION_COST_STEPS = 1.0

# torch.compile (decode step + dynamic-shape prefill), measured at 2 threads, bf16, with
# benchmarks/bench_generate.py (contenders alternating): on the AMD EPYC (AVX512-BF16), with the
# decode attention as inductor code over a realized query (see _realized), +48 % tokens/s for
# 64 prompts x 1 sample and +79 % for 8 x 16 (3.29x and 5.44x HF generate, against 2.23x and 3.04x
# eager); on an Intel Xeon with AMX, before that change, +73 % and +45 % (2.81x and 3.54x).
# The cost: a process's first call compiles for 10-30 s (inductor cache warm or cold) and a new
# decode batch size adds 2-13 s; the graph then serves every model of the same architecture.
# The quick study samples ~30 s in all, less than the compile would cost, so compile stays off by
# default; long runs (online RL, large evaluations, big grids) turn it on with
# ``execution.compile_sampling`` / the online ``compile_sampling``.
# There is no automatic switch after N decode steps: compiled and eager bf16 round differently, so
# the same seed would give different samples depending on what the sampler did before (a resumed
# run would not reproduce the stages it recomputes).
_COMPILE_DEFAULT = False


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matmul instructions (AVX512-BF16 or AMX-BF16).

    Without them bf16 matmuls are emulated and slower than fp32, so ``precision="auto"`` only picks
    bf16 when they exist.
    """
    return _cpu_has("avx512_bf16") or _cpu_has("amx_bf16")


def resolve_precision(precision: str, model: PreTrainedModel) -> tuple[str, torch.dtype | None]:
    """Map a requested precision to (recorded name, autocast dtype or None).

    Autocast only applies to fp32 weights; a model already loaded in bf16/fp16 runs in its dtype.
    """
    names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"precision must be 'fp32', 'bf16' or 'auto', got {precision!r}")
    weights = names.get(model.dtype, str(model.dtype))
    if model.dtype != torch.float32:
        if precision not in ("auto", weights):
            raise ValueError(f"model weights are {weights}; cannot run it in {precision}")
        return weights, None
    if precision == "auto":
        device = model.device
        if device.type == "cpu":
            supported = cpu_supports_bf16()
        else:
            supported = device.type == "cuda" and torch.cuda.is_bf16_supported()
        precision = "bf16" if supported else "fp32"
    return (precision, torch.bfloat16) if precision == "bf16" else ("fp32", None)


def _attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    """Attention for the engine's additive 4-D masks (``AttentionInterface`` signature).

    Two kernels, chosen per CPU (see ``_SDPA_ON_CPU``): ``scaled_dot_product_attention`` (on GPUs,
    on CPUs where its flash kernel is fast, and for eager prefills everywhere), or
    matmul-softmax-matmul (``_matmul_attention``) for decode steps on other CPUs and, compiled, for
    their prefills of prompts up to ``_MATMUL_PREFILL_MAX_KEYS`` tokens. The matmul version groups
    the query heads per KV head, so grouped-query attention needs no ``repeat_kv`` copy of the cache.
    The whole static cache is read (its unfilled tail is masked): slicing it to the filled length
    makes the bf16 batched matmul copy the slice first, measured 5x slower. ``dropout`` is ignored
    (sampling runs in eval mode).
    """
    _, heads, q_len, _ = query.shape
    groups = heads // key.shape[1]
    # Under autocast the query leaves RoPE in fp32 while the cache holds bf16: compute in bf16,
    # as autocast would.
    query = query.to(key.dtype)
    compiled = torch.compiler.is_compiling()
    matmul = (
        query.device.type == "cpu"
        and not _SDPA_ON_CPU
        and (q_len == 1 or (compiled and key.shape[-2] <= _MATMUL_PREFILL_MAX_KEYS))
    )
    if matmul:
        return _matmul_attention(_realized(query) if compiled else query, key, value, attention_mask, scaling), None
    if q_len > 1:
        if groups > 1:
            key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling)
    else:
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, scale=scaling, enable_gqa=groups > 1
        )
    return out.transpose(1, 2), None


def _realized(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as is, but made a buffer of its own in an inductor graph.

    Inductor lowers a CPU ``bmm`` with one query row to a multiply-and-sum loop
    (``torch/_inductor/kernel/bmm.py``, "memory bound") and inlines the query's producers into it,
    so the decode step's q·K recomputed the query's RoPE (cos, sin, rotate) for every cached
    position: 0.8 ms per layer, slower than aten's ``bmm``. An ``as_strided`` view onto the
    tensor's own layout is a no-op in value, but inductor's lowering of it realizes its input
    (``torch/_inductor/lowering.py``), and the loop then reads a plain buffer: measured on the AMD
    EPYC (AVX512-BF16, 2 threads, bf16) a whole 64 x 32-token compiled call -23 %, 8 prompts x 16
    samples -29 %, against running the same attention as an opaque op over aten's ``bmm``.
    """
    return tensor.as_strided(tensor.size(), tensor.stride())


# Which attention kernel runs on CPU depends on the CPU, measured at 2 threads, bf16, on the
# benchmark model. A decode step (64 rows x 4 heads x 96 cached positions x 64, per layer):
# - AMD EPYC with AVX512-BF16 and no AMX: PyTorch's CPU flash kernel (what SDPA picks) ~2 ms,
#   8x the matmul-softmax-matmul of ``_matmul_attention`` (eager); compiled, the matmul version
#   becomes inductor code (see ``_realized``): 175 us in the decode graph;
# - Intel Xeon with AMX: the flash kernel 153 us against 337 us in bf16 (284 vs 304 us in fp32),
#   2.2x faster eager, which took the decode step from 5.9 to 5.2 ms; the compiled matmul version
#   over a realized query is not yet measured there.
# A prefill chunk (16 prompts x 64 tokens) on the AMD EPYC: flash 850 us per layer, the matmul
# version 1.5 ms eager (aten's bf16 bmm of 64 x 64 matrices is slow there) but 451 us compiled,
# where it took the prefill's attention from 9.4 to 5.2 ms of a 64 x 32-token call (-2 to -9 % in
# in-process A/B runs of the whole call on a noisy host). Its scores are materialised
# (chunk tokens x heads x keys x 4 bytes), hence the cap on prompt length.
# So SDPA runs everything on CPUs with AMX (and on GPUs); elsewhere the matmul version decodes,
# and prefills when compiled.
_SDPA_ON_CPU = _cpu_has("amx_bf16")
_MATMUL_PREFILL_MAX_KEYS = 256


def _matmul_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor, scaling: float
) -> torch.Tensor:
    """``softmax(q kᵀ · scaling + mask) v`` with the query heads grouped per KV head.

    ``query`` ``(rows, heads, q_len, head_dim)``, ``key``/``value`` ``(rows, kv_heads, keys,
    head_dim)``, ``attention_mask`` additive ``(rows, 1, q_len, keys)``; returns ``(rows, q_len,
    heads, head_dim)``. The probabilities are cast to the values' dtype before the second product,
    as SDPA's math kernel does.
    """
    rows, heads, q_len, head_dim = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    grouped = query.reshape(rows, kv_heads, groups * q_len, head_dim)
    scores = torch.matmul(grouped, key.transpose(-1, -2)).view(rows, kv_heads, groups, q_len, -1)
    scores = scores * scaling + attention_mask[:, :, None]
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    out = torch.matmul(probs.view(rows, kv_heads, groups * q_len, -1), value)
    return out.view(rows, heads, q_len, head_dim).transpose(1, 2)


_ATTENTION_NAME = "prefshift_engine"
AttentionInterface.register(_ATTENTION_NAME, _attention)


@contextmanager
def _attention_implementation(config: object, name: str) -> Iterator[None]:
    """Route the model's attention through ``name`` for the duration of a call, then restore it."""
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


#: Architectures whose decoder layer is Llama's: pre-norm ``input_layernorm`` -> ``k_proj`` / ``v_proj``
#: -> the modeling module's ``apply_rotary_pos_emb`` -> ``past_key_values.update``, with no q/k norm.
_LLAMA_LIKE_LAYERS = ("llama", "mistral", "qwen2")


def _last_layer_prefill_hook(rope: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Callable[..., object]:
    """Forward pre-hook for the last decoder layer that skips its dead prefill work.

    Only the last position's logits are used after a prefill, so in the last layer the other
    positions are needed only as keys/values of the cache: their queries, attention, ``o_proj`` and
    MLP are never read. The hook writes the K/V of positions ``[0, L-1)`` into the cache with the
    layer's own modules (norm, ``k_proj``, ``v_proj``, the model's RoPE, the cache's ``update``) and
    hands the layer the last position only, which then attends to the whole prompt as in a decode
    step. That removes ~22 % of the prefill matmul FLOPs of a 4-layer model; measured on the
    benchmark model (bf16, 1 thread, 64 prompts x 64 tokens, min of 9): prefill 299 -> 247 ms
    (-17 %). Decode calls (one position) pass through untouched.
    """

    def hook(layer: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        hidden = args[0] if args else kwargs.pop("hidden_states")
        if hidden.shape[1] == 1:
            return None
        attn = layer.self_attn
        cos, sin = kwargs["position_embeddings"]
        prefix = layer.input_layernorm(hidden[:, :-1])
        shape = (*prefix.shape[:-1], -1, attn.head_dim)
        keys = attn.k_proj(prefix).view(shape).transpose(1, 2)
        values = attn.v_proj(prefix).view(shape).transpose(1, 2)
        # The model's RoPE rotates queries and keys together; an empty query skips the former.
        _, keys = rope(keys[:, :0], keys, cos[:, :-1], sin[:, :-1])
        # transformers >= 5.24 passes the cache to layers as ``cache``, earlier 5.x as ``past_key_values``.
        cache = kwargs["cache"] if "cache" in kwargs else kwargs["past_key_values"]
        cache.update(keys, values, attn.layer_idx)
        kwargs["position_embeddings"] = (cos[:, -1:], sin[:, -1:])
        kwargs["attention_mask"] = kwargs["attention_mask"][:, :, -1:]
        kwargs["position_ids"] = kwargs["position_ids"][:, -1:]
        return (hidden[:, -1:], *args[1:]), kwargs

    return hook


@contextmanager
def _last_layer_prefill_skipped(decoder: torch.nn.Module, model_type: str) -> Iterator[None]:
    """Install :func:`_last_layer_prefill_hook` for the duration of a call where the last layer is
    Llama's; other architectures (q/k norms, parallel blocks, ...) keep the full prefill."""
    layer = decoder.layers[-1] if model_type in _LLAMA_LIKE_LAYERS else None
    attn = getattr(layer, "self_attn", None)
    rope = getattr(inspect.getmodule(attn), "apply_rotary_pos_emb", None)
    llama_like = (
        layer is not None
        and rope is not None
        and all(hasattr(attn, name) for name in ("k_proj", "v_proj", "head_dim", "layer_idx"))
        and hasattr(layer, "input_layernorm")
        and not hasattr(attn, "q_norm")
        and not hasattr(attn, "k_norm")
    )
    if not llama_like:
        yield
        return
    handle = layer.register_forward_pre_hook(_last_layer_prefill_hook(rope), with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


_PREPACK_AVAILABLE = torch.backends.mkldnn.is_available() and hasattr(
    torch.ops.mkldnn, "_reorder_linear_weight"
)


def _packed_linear(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(hidden.to(dtype), weight, bias, "none", [], "")


#: Sibling linears that read the same input in Llama-like blocks (and most HF decoders).
_SHARED_INPUT_LINEARS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class _GroupedLinear(torch.nn.Linear):
    """What an ``nn.Linear`` of a group (see ``_linear_groups``) is during a compiled call.

    Its ``__class__`` is swapped for the call and back afterwards (``_low_precision_linears``).
    The group's weights are rows of one low-precision copy made for the call, and each member
    computes the product with all of it and keeps its own columns: in the graph the members'
    products are then one ``mm`` node, which ``_MergeDuplicates`` turns into one, so Q, K and V
    become one GEMM and gate and up another, as in fused-QKV models, while the model's own forward
    still calls three projections (oneDNN's bf16 GEMM costs ~40 us per call at 64 rows whatever its
    size: measured at 2 threads, 256 -> 768 columns took 72 us against 3 x 43). Correct for any
    group, shared input or not; the merge needs the shared input.

    A class rather than an instance-level ``forward``: Dynamo guards on an instance's ``forward``
    object by identity but on a module's class and tensor attributes by type, shape and dtype, so
    the graph compiled for one model serves every model of the same architecture (a study samples
    many), and the copies can be new tensors on every call.
    """

    _group_weight: torch.Tensor
    _group_bias: torch.Tensor | None
    _columns: tuple[int, int]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        start, stop = self._columns
        product = F.linear(hidden.to(self._group_weight.dtype), self._group_weight, self._group_bias)
        return product[..., start:stop]


def _columns(group: Sequence[torch.nn.Linear]) -> list[tuple[int, int]]:
    """Each member's output columns in the group's concatenated product."""
    bounds, start = [], 0
    for module in group:
        bounds.append((start, start + module.out_features))
        start += module.out_features
    return bounds


def _group_weights(
    group: Sequence[torch.nn.Linear], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The group's weights (and biases) concatenated, cast to ``dtype``, from their current values."""
    return _stacked([m.weight for m in group], dtype), (
        None if group[0].bias is None else _stacked([m.bias for m in group], dtype)
    )


def _stacked(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """``torch.cat(tensors).to(dtype)`` in one pass: each tensor is cast straight into its rows.

    ``cat`` then ``to`` would copy the fp32 weights twice (once whole, once cast), and every
    group's weights are re-made on every call.
    """
    out = tensors[0].new_empty((sum(t.shape[0] for t in tensors), *tensors[0].shape[1:]), dtype=dtype)
    start = 0
    for tensor in tensors:
        out[start : start + tensor.shape[0]].copy_(tensor.detach())
        start += tensor.shape[0]
    return out


def _switchable(module: object) -> bool:
    """An exact ``nn.Linear`` without an instance-level ``forward`` (such as accelerate's hooks)."""
    return type(module) is torch.nn.Linear and "forward" not in module.__dict__


def _all_switchable(modules: Sequence[torch.nn.Module]) -> bool:
    """Whether every module of ``modules`` that autocast would run in low precision (linears,
    transformers' ``Conv1D``) is a switchable linear (see ``_low_precision_linears``)."""
    return all(_switchable(m) for m in modules if isinstance(m, (torch.nn.Linear, Conv1D)))


def _linear_groups(modules: Sequence[torch.nn.Module]) -> list[list[torch.nn.Linear]]:
    """The switchable linears of ``modules``, siblings that read one input grouped together.

    Switchable (``_switchable``): LoRA layers' inner linears are, their wrappers keep running. A group needs
    the same input width and biases on all members or none.
    """

    groups: list[list[torch.nn.Linear]] = []
    grouped: set[int] = set()
    for parent in modules:
        for names in _SHARED_INPUT_LINEARS:
            members = [getattr(parent, name, None) for name in names]
            ids = {id(m) for m in members}
            if (
                all(_switchable(m) for m in members)
                and len(ids) == len(members)
                and not grouped & ids
                and len({(m.in_features, m.bias is None, m.weight.dtype) for m in members}) == 1
            ):
                groups.append(members)
                grouped |= ids
    for module in modules:
        if _switchable(module) and id(module) not in grouped:
            groups.append([module])
            grouped.add(id(module))
    return groups


class _PackedGroup:
    """Eager forwards of a group of linears (see ``_linear_groups``) on oneDNN-prepacked weights.

    The group's weights are cast, concatenated and reordered into oneDNN's blocked layout for
    ``rows``-row inputs once; the first member called on a new input runs the one GEMM (and the
    one cast of the input) for all, and each member returns its own columns. One 256 -> 768 GEMM
    instead of Q, K and V took a 64 x 32-token call from 374 to 363 ms (2 threads, bf16), with
    identical samples. Remade on every call: whether the weights changed since the last call cannot
    be told cheaply (fused AdamW updates parameters without bumping their version counter).
    """

    def __init__(self, group: Sequence[torch.nn.Linear], dtype: torch.dtype, rows: int) -> None:
        weight, self._bias = _group_weights(group, dtype)
        self._weight = torch.ops.mkldnn._reorder_linear_weight(weight, rows)
        self._dtype = dtype
        self._bounds = _columns(group)
        self._input: tuple[torch.Tensor, int | None] | None = None
        self._output: torch.Tensor | None = None

    def forwards(self) -> list[functools.partial]:
        return [functools.partial(self._forward, index) for index in range(len(self._bounds))]

    def _forward(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        # The held reference keeps ``hidden``'s identity from being reused; the version counter
        # catches an in-place change between two members' calls.
        # (Inference tensors have no version counter: under inference_mode only identity counts.)
        version = None if hidden.is_inference() else hidden._version
        if self._input is None or self._input[0] is not hidden or self._input[1] != version:
            self._output = _packed_linear(hidden, self._weight, self._bias, self._dtype)
            self._input = (hidden, version)
        start, stop = self._bounds[index]
        return self._output[..., start:stop]


@contextmanager
def _low_precision_linears(
    modules: Sequence[torch.nn.Module], dtype: torch.dtype, rows: int, compiled: bool = False
) -> Iterator[None]:
    """Run the ``nn.Linear`` layers of ``modules`` on ``dtype`` weights made once, for a call.

    Under CPU autocast every linear casts its fp32 weight to bf16, and oneDNN then reorders that
    plain-layout weight into its blocked layout, on each call. Doing both once (the same thing
    inductor's weight freezing does) gives the same numbers (max difference 0 in tokens and
    log-probs on the benchmark model) and cost, measured at 2 threads, bf16, 64 rows: 2.9 -> 1.9 ms
    of the 28 decoder projections per decode step, -10 % for a whole 64 x 32-token call; linears
    that read one input then share one GEMM (see ``_PackedGroup``). Under ``torch.compile``
    (``compiled``), where Dynamo cannot trace oneDNN's opaque tensors, the linears run on plain
    ``dtype`` copies instead, grouped the same way (see ``_GroupedLinear``); the graph would
    otherwise cast every weight on every step. The low-precision weights are remade
    every call, so a policy updated between calls (online RL) is sampled with its current weights.
    """
    switched, regrouped = [], []
    try:
        for group in _linear_groups(modules):
            if not compiled:
                for module, forward in zip(group, _PackedGroup(group, dtype, rows).forwards(), strict=True):
                    module.forward = forward
                    switched.append(module)
                continue
            weight, bias = _group_weights(group, dtype)
            for module, columns in zip(group, _columns(group), strict=True):
                module.__class__ = _GroupedLinear
                module.__dict__.update(_group_weight=weight, _group_bias=bias, _columns=columns)
                regrouped.append(module)
        yield
    finally:
        for module in switched:
            del module.forward
        for module in regrouped:
            module.__class__ = torch.nn.Linear
            for name in ("_group_weight", "_group_bias", "_columns"):
                del module.__dict__[name]


class _MergeDuplicates(CustomGraphPass):
    """Inductor post-grad pass: one node for identical pure nodes (same op, same inputs).

    Common-subexpression elimination of a few pure ops, written here because PyTorch runs its CSE
    (``torch._functorch.compile_utils.fx_graph_cse``) only in the training partitioner and under
    weight freezing, not on the inference graphs the engine compiles, and that function returns a
    new graph where this hook must edit the one it is given. The engine relies on it to merge the
    grouped projections of ``_GroupedLinear`` (and the casts of their shared input): 29 -> 17
    GEMMs per decode step on the benchmark model, compiled call -10 % (2 threads, bf16).
    """

    _PURE = frozenset(
        {
            torch.ops.aten.mm.default,
            torch.ops.aten.addmm.default,
            torch.ops.aten.permute.default,
            torch.ops.aten.t.default,
            torch.ops.aten.view.default,
            torch.ops.aten.reshape.default,
            torch.ops.prims.convert_element_type.default,
        }
    )

    def __call__(self, graph: torch.fx.Graph) -> None:
        seen: dict[tuple, torch.fx.Node] = {}
        for node in list(graph.nodes):
            if node.op != "call_function" or node.target not in self._PURE:
                continue
            if any(user.op == "output" for user in node.users):
                continue  # a graph output keeps its own storage
            try:
                key = (node.target, node.args, tuple(sorted(node.kwargs.items())))
                hash(key)
            except TypeError:  # an unhashable argument: leave the node alone
                continue
            if key in seen:
                node.replace_all_uses_with(seen[key])
                graph.erase_node(node)
            else:
                seen[key] = node

    def uuid(self) -> bytes:
        return get_hash_for_files((__file__,))


# The C++ wrapper calls a graph's kernels from C++ instead of ~60 Python statements per decode
# step: compiled call -11 % together with the cache and weight-cast changes of the same commit.
_COMPILE_OPTIONS = {"post_grad_custom_pre_pass": _MergeDuplicates(), "cpp_wrapper": True}


def _as_id_list(value: int | Sequence[int] | None) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _plan_batches(prompt_lens: Sequence[int], n: int, max_rows: int) -> list[list[tuple[int, int]]]:
    """Split the (prompt, sample) pairs into decode batches of at most ``max_rows`` rows.

    Prompts are ordered longest first so that prompts of similar length share a batch (less left
    padding); the samples of a prompt stay contiguous so each batch prefills each prompt once.
    """
    order = sorted(range(len(prompt_lens)), key=lambda i: -prompt_lens[i])
    pairs = [(i, j) for i in order for j in range(n)]
    return [pairs[s : s + max_rows] for s in range(0, len(pairs), max_rows)]


class _CastingStaticLayer(StaticLayer):
    """``StaticLayer`` that casts incoming states to its storage dtype.

    Under CPU autocast the model's keys leave RoPE in fp32 (cos/sin are fp32) while its values are
    bf16, and ``StaticLayer`` needs one dtype for both. Storing both in bf16 loses nothing: the
    attention matmul casts them to bf16 under autocast anyway, and this way each step reads half
    the bytes and casts one new token instead of the whole cache.
    """

    def __init__(self, max_cache_len: int, written: int = 0) -> None:
        super().__init__(max_cache_len=max_cache_len)
        self._written = written

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """``StaticLayer``'s allocation, zeroing only the positions from ``written`` on.

        The engine writes positions ``[0, written)`` of every row (the prefill) before anything
        reads them; the rest must be zero, not arbitrary memory, because a masked position still
        multiplies its value row by a zero weight and a NaN there would poison the row. Zeroing
        only the tail saves filling the prompt part: 25 MB per 64 x 96 batch cache on the benchmark
        model, plus the prefill's own caches, which are written whole.
        """
        super().lazy_initialization(key_states[:0], value_states[:0])  # metadata, empty storage
        rows = key_states.shape[0]
        self.batch_size = rows
        for name, states in (("keys", key_states), ("values", value_states)):
            storage = states.new_empty((rows, self.num_heads, self.max_cache_len, states.shape[-1]))
            storage[:, :, self._written :].zero_()
            torch._dynamo.mark_static_address(storage)  # as StaticLayer does (compiled decode)
            setattr(self, name, storage)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``StaticLayer.update`` (write at ``cumulative_length``, advance it), casting on the way.

        Eager on CPU, the states are copied into a slice of the cache, which casts them in the
        same pass: ``StaticLayer``'s ``index_copy_`` with a separate cast measured 4x slower for a
        decode step's token and 4x for a prefill chunk (2 threads, benchmark model). Compiled,
        the slice start would be a data-dependent int, so the traced path stays ``StaticLayer``'s,
        which inductor turns into an in-place write anyway; on a GPU, reading the start would
        synchronise the device on every layer.
        """
        if torch.compiler.is_compiling() or self.keys.device.type != "cpu":
            return super().update(
                key_states.to(self.keys.dtype), value_states.to(self.values.dtype), *args, **kwargs
            )
        start, length = int(self.cumulative_length), key_states.shape[-2]
        self.keys.narrow(2, start, length).copy_(key_states)
        self.values.narrow(2, start, length).copy_(value_states)
        self.cumulative_length.add_(length)
        return self.keys, self.values


@dataclass
class _DecodeState:
    """Tensors of the rows still in the batch; all are re-indexed together on compaction."""

    cache: StaticCache
    mask: torch.Tensor  # (rows, 1, 1, max_len) additive: 0 where visible, dtype min elsewhere
    positions: torch.Tensor  # (rows, 1) position id of the next token
    rows: torch.Tensor  # (rows,) index of each row in the output tensors
    alive: torch.Tensor  # (rows,) False once the row produced a stop token

    def keep(self, index: torch.Tensor) -> None:
        for layer in self.cache.layers:
            # StaticLayer has no batch-select; its update() only uses keys/values/cumulative_length.
            layer.keys = layer.keys.index_select(0, index)
            layer.values = layer.values.index_select(0, index)
            layer.batch_size = index.numel()
        self.mask = self.mask.index_select(0, index)
        self.positions = self.positions.index_select(0, index)
        self.rows = self.rows.index_select(0, index)
        self.alive = self.alive.index_select(0, index)


class TransformersSampler:
    """Sampler running a transformers causal LM in-process (CPU or a single GPU).

    While ``generate`` runs, the model's attention implementation is switched to the engine's
    (``_attention``) and restored afterwards: do not run the same model in another thread meanwhile.

    Args:
        model: a decoder-only ``PreTrainedModel`` whose attention layers are all full (no sliding
            window) and dispatch through transformers' ``AttentionInterface`` (Llama, Qwen2/3,
            Mistral without sliding window, ...).
        tokenizer: needed for string prompts and for ``Sample.text``; also a source of EOS ids.
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"auto"`` (bf16 when the hardware has
            native bf16 matmuls). The precision used is recorded in ``Samples.precision``.
        compile: ``torch.compile`` the prefill and decode forwards; ``None`` uses the measured
            default (off, see ``_COMPILE_DEFAULT``). A failed compilation logs a warning and falls
            back to eager.
        kv_cache_budget_bytes: bytes of KV cache per decode batch; the number of rows follows.
        max_batch_size: manual cap on rows per decode batch (overrides the budget if smaller).
        show_progress: show a tqdm bar over decode steps.
    """

    backend = "transformers"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: object | None = None,
        *,
        precision: Precision = "auto",
        compile: bool | None = None,
        kv_cache_budget_bytes: int = DEFAULT_KV_CACHE_BUDGET_BYTES,
        max_batch_size: int | None = None,
        show_progress: bool = False,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.precision, self._autocast_dtype = resolve_precision(precision, model)
        self.device = model.device
        self.kv_cache_budget_bytes = kv_cache_budget_bytes
        self.max_batch_size = max_batch_size
        self.show_progress = show_progress
        self._compile = _COMPILE_DEFAULT if compile is None else compile
        self._compiled: dict[str, Callable[..., torch.Tensor]] = {}

        config = model.config.get_text_config(decoder=True)
        if getattr(config, "attn_logit_softcapping", None):
            raise NotImplementedError(
                "attention logit soft-capping is not supported by the transformers engine"
            )
        self._num_layers = config.num_hidden_layers
        self._model_type = config.model_type
        self._kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        self._head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self._logit_softcap = getattr(config, "final_logit_softcapping", None)
        self._decoder = model.get_decoder()
        # transformers 5.24 renamed the decoder's ``past_key_values`` argument to ``cache`` (the old
        # name still works, through a deprecation wrapper that warns on every call).
        forward_params = inspect.signature(self._decoder.forward).parameters
        self._cache_kwarg = "cache" if "cache" in forward_params else "past_key_values"
        self._lm_head = model.get_output_embeddings()
        # KV storage dtype: the autocast dtype under autocast (see _CastingStaticLayer), else the weights'.
        self._cache_dtype = self._autocast_dtype or model.dtype

        generation_config = getattr(model, "generation_config", None)
        eos = _as_id_list(getattr(generation_config, "eos_token_id", None))
        eos += _as_id_list(getattr(tokenizer, "eos_token_id", None))
        self.eos_token_ids: tuple[int, ...] = tuple(dict.fromkeys(eos))
        pad = getattr(generation_config, "pad_token_id", None)
        if pad is None:
            pad = getattr(tokenizer, "pad_token_id", None)
        # Pad positions are masked out, so any in-vocabulary id works.
        self._pad_id = int(pad) if pad is not None else (self.eos_token_ids[0] if self.eos_token_ids else 0)

    # ------------------------------------------------------------------ public API

    def rows_per_batch(self, max_prompt_len: int, max_new_tokens: int) -> int:
        """Decode rows that fit the KV budget (and ``max_batch_size``) for these lengths."""
        element = torch.finfo(self._cache_dtype).bits // 8
        per_token = 2 * self._num_layers * self._kv_heads * self._head_dim * element  # keys + values
        rows = max(1, self.kv_cache_budget_bytes // (per_token * (max_prompt_len + max_new_tokens)))
        if self.max_batch_size is not None:
            rows = min(rows, self.max_batch_size)
        return rows

    def generate(self, prompts: Sequence[str] | Sequence[Sequence[int]], params: SamplingParams) -> Samples:
        """Sample ``params.n`` continuations for every prompt.

        Args:
            prompts: strings (tokenized with the tokenizer, special tokens added) or token id lists.
            params: sampling parameters.

        Returns:
            ``Samples`` ordered by (prompt_index, sample_index).
        """
        prompt_ids = self._encode(prompts)
        stop = torch.tensor(sorted(set(self.eos_token_ids) | set(params.stop_token_ids)), dtype=torch.long)
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        max_rows = self.rows_per_batch(max(map(len, prompt_ids)), params.max_new_tokens)
        batches = _plan_batches([len(p) for p in prompt_ids], params.n, max_rows)

        progress = None
        if self.show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(batches) * params.max_new_tokens, desc="sampling", unit="step")

        outputs: dict[tuple[int, int], tuple[list[int], list[float] | None]] = {}
        was_training = self.model.training
        self.model.eval()
        try:
            with (
                self._precision(min(max_rows, len(prompt_ids) * params.n)),
                _attention_implementation(self._decoder.config, _ATTENTION_NAME),
                _last_layer_prefill_skipped(self._decoder, self._model_type),
            ):
                for pairs in batches:
                    tokens, logprobs = self._generate_batch(
                        prompt_ids, pairs, params, stop, generator, progress
                    )
                    for r, pair in enumerate(pairs):
                        outputs[pair] = (tokens[r], logprobs[r] if logprobs is not None else None)
        finally:
            self.model.train(was_training)
            if progress is not None:
                progress.close()
        return self._assemble(outputs, len(prompt_ids), params, set(stop.tolist()))

    # ------------------------------------------------------------------ internals

    @contextmanager
    def _precision(self, rows: int) -> Iterator[None]:
        """Grad mode, autocast and low-precision weights for a call of up to ``rows`` decode rows.

        bf16 on a CPU with oneDNN runs the linears on bf16 weights made for the call (see
        :func:`_low_precision_linears`), which cast their inputs themselves; attention gets bf16
        queries and a bf16 cache. Where that covers every module autocast would cast (all
        linears were switched), autocast has nothing left to do and stays off, and the call runs
        under ``inference_mode``, which costs less per op than ``no_grad``: bit-identical samples
        and log-probs, 64 x 32-token call -4 % eager, -8 % compiled (2 threads, benchmark model). The same
        holds without autocast at all (fp32, or weights already in bf16). Otherwise (a GPU, a
        linear that cannot be switched) autocast runs under ``no_grad``: autocast caches its
        weight casts only for tensors that require grad, which ``inference_mode`` hides (29
        extra weight casts per decode step on the benchmark model).
        """
        dtype = self._autocast_dtype
        modules = [*self._decoder.modules(), self._lm_head]
        prepack = dtype is not None and self.device.type == "cpu" and _PREPACK_AVAILABLE
        autocast = dtype is not None and not (prepack and _all_switchable(modules))
        with (
            torch.no_grad() if autocast else torch.inference_mode(),
            torch.autocast(device_type=self.device.type, dtype=dtype) if autocast else nullcontext(),
            _low_precision_linears(modules, dtype, rows, compiled=self._compile) if prepack else nullcontext(),
        ):
            yield

    def _encode(self, prompts: Sequence[str] | Sequence[Sequence[int]]) -> list[list[int]]:
        if len(prompts) == 0:
            raise ValueError("no prompts given")
        if isinstance(prompts[0], str):
            if self.tokenizer is None:
                raise ValueError("string prompts need a tokenizer; pass token id lists instead")
            ids = [list(p) for p in self.tokenizer(list(prompts), add_special_tokens=True)["input_ids"]]
        else:
            ids = [[int(t) for t in p] for p in prompts]
        if any(len(p) == 0 for p in ids):
            raise ValueError("empty prompt: every prompt needs at least one token")
        return ids

    def _new_cache(self, rows: int, max_len: int, written: int) -> StaticCache:
        """An allocated ``StaticCache`` of ``rows`` x ``max_len`` in the storage dtype, whose
        positions ``[0, written)`` the caller fills before reading (see ``_CastingStaticLayer``)."""
        cache = StaticCache(config=self.model.config, max_cache_len=max_len)
        if any(type(layer) is not StaticLayer for layer in cache.layers):
            raise NotImplementedError(
                "sliding-window / hybrid attention layers are not supported by the transformers engine"
            )
        cache.layers = [_CastingStaticLayer(max_cache_len=max_len, written=written) for _ in cache.layers]
        empty = torch.empty(
            (rows, self._kv_heads, 0, self._head_dim), dtype=self._cache_dtype, device=self.device
        )
        for layer in cache.layers:
            layer.lazy_initialization(empty, empty)
        return cache

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self._lm_head(hidden).float()
        if self._logit_softcap:
            logits = torch.tanh(logits / self._logit_softcap) * self._logit_softcap
        return logits

    def _forward(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: StaticCache,
    ) -> torch.Tensor:
        """Decoder over ``input_ids`` writing into ``cache``; logits of the last position only."""
        hidden = self._decoder(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kwarg: cache},
        ).last_hidden_state
        return self._logits(hidden[:, -1])

    # Two entry points with their own code objects, hence their own torch.compile caches: prefill
    # shapes change with every batch (compiled with dynamic shapes), decode shapes only when rows
    # are dropped or a new batch starts (left to automatic dynamic-shape detection).
    def _prefill_forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: StaticCache
    ) -> torch.Tensor:
        return self._forward(input_ids, mask, positions, cache)

    def _decode_step(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: StaticCache,
        u: torch.Tensor | None,
        choice: TokenChoice,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One decode step and the next tokens drawn from its logits (see ``select_tokens``).

        The draw is part of the step so that, compiled, softmax, cumsum and the search fuse into
        the step's graph instead of running as a dozen eager ops between graphs.
        """
        logits = self._forward(input_ids, mask, positions, cache)
        return select_tokens(logits, u, choice)

    def _run(self, phase: str, *args: object, repeat: bool = False) -> object:
        """``_prefill_forward(*args)`` or ``_decode_step(*args)`` (``phase``), through
        ``torch.compile`` when enabled, falling back to eager if it fails.

        ``repeat``: the inputs are the previous call's tensors (or same-shaped successors), so
        Dynamo's guards, which passed then, would pass again; they are skipped, which saves ~0.3 ms
        per decode step (2 threads; ``torch.compiler.set_stance``'s ``skip_guard_eval_unsafe``).

        Each phase compiles as one whole graph (``fullgraph=True``): a graph break splits a step
        into many small graphs, each with its own guards and cache lookup (one stray break gave a
        64 x 32-token call 1,638 cache lookups and made it slower compiled than eager), so a break
        fails the compilation and the sampler falls back to eager with a warning instead.
        """
        fn = self._prefill_forward if phase == "prefill" else self._decode_step
        cache: StaticCache = args[3]  # both take (input_ids, mask, positions, cache, ...)
        if self._compile:
            compiled = self._compiled.get(phase)
            if compiled is None:
                dynamic = True if phase == "prefill" else None
                compiled = torch.compile(fn, dynamic=dynamic, fullgraph=True, options=_COMPILE_OPTIONS)
                self._compiled[phase] = compiled
            length = int(cache.layers[0].cumulative_length)
            stance = torch.compiler.set_stance(skip_guard_eval_unsafe=True) if repeat else nullcontext()
            try:
                with stance:
                    return compiled(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure must fall back, not abort a run
                logger.warning("torch.compile failed (%s); falling back to eager", exc)
                self._compile = False
                for layer in cache.layers:  # undo a partially run forward
                    layer.cumulative_length.fill_(length)
        return fn(*args)

    def _prefill(
        self, input_ids: torch.Tensor, valid: torch.Tensor, row_prompt: torch.Tensor, cache: StaticCache
    ) -> torch.Tensor:
        """Run the left-padded prompts, copy their KV into the rows of ``cache``; last-token logits.

        ``row_prompt`` (sorted) maps each cache row to its prompt, so a prompt is computed once
        for all its samples. Prompts run in chunks of ~``_PREFILL_CHUNK_TOKENS`` tokens.
        """
        num, length = input_ids.shape
        hidden = torch.finfo(self._cache_dtype).min
        causal = torch.ones(length, length, dtype=torch.bool, device=self.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=self.device)
        chunk = max(1, _PREFILL_CHUNK_TOKENS // length)
        logits = []
        for start in range(0, num, chunk):
            stop = min(start + chunk, num)
            chunk_valid = valid[start:stop]
            # Padding queries attend to themselves so no softmax row is empty (an all-masked row
            # gives NaN, and NaN values times a zero weight still poison the real rows).
            allowed = (causal[None] & chunk_valid[:, None, :]) | eye[None]
            mask = torch.zeros(allowed.shape, dtype=self._cache_dtype, device=self.device)
            mask = mask.masked_fill_(~allowed, hidden)[:, None]
            positions = (chunk_valid.long().cumsum(-1) - 1).clamp(min=0)
            prompt_cache = self._new_cache(stop - start, length, written=length)
            logits.append(self._run("prefill", input_ids[start:stop], mask, positions, prompt_cache))

            first, last = torch.searchsorted(
                row_prompt, torch.tensor([start, stop], device=self.device)
            ).tolist()
            local = row_prompt[first:last] - start
            one_row_each = last - first == stop - start  # n == 1: rows are the prompts, in order
            for src, dst in zip(prompt_cache.layers, cache.layers, strict=True):
                for source, target in ((src.keys, dst.keys), (src.values, dst.values)):
                    target[first:last, :, :length] = source if one_row_each else source.index_select(0, local)
        for layer in cache.layers:
            layer.cumulative_length.fill_(length)
        return torch.cat(logits)

    def _generate_batch(
        self,
        prompt_ids: list[list[int]],
        pairs: list[tuple[int, int]],
        params: SamplingParams,
        stop: torch.Tensor,
        generator: torch.Generator,
        progress: object | None,
    ) -> tuple[list[list[int]], list[list[float]] | None]:
        """Prefill the distinct prompts of ``pairs`` once, then decode one row per pair."""
        device = self.device
        unique = list(dict.fromkeys(i for i, _ in pairs))
        slot = {prompt: k for k, prompt in enumerate(unique)}
        row_prompt = torch.tensor([slot[i] for i, _ in pairs], device=device)
        prompt_len = max(len(prompt_ids[i]) for i in unique)
        steps = params.max_new_tokens
        rows = len(pairs)

        # Left-padded as Python lists, then one tensor each (a tensor per prompt costs ~20 us apiece).
        pads = [prompt_len - len(prompt_ids[i]) for i in unique]
        input_ids = torch.tensor(
            [[self._pad_id] * pad + prompt_ids[i] for pad, i in zip(pads, unique, strict=True)], device=device
        )
        valid = torch.tensor([[False] * pad + [True] * (prompt_len - pad) for pad in pads], device=device)

        cache = self._new_cache(rows, prompt_len + steps, written=prompt_len)
        logits = self._prefill(input_ids, valid, row_prompt, cache).index_select(0, row_prompt)
        row_valid = valid.index_select(0, row_prompt)
        mask = torch.full(
            (rows, 1, 1, prompt_len + steps), torch.finfo(self._cache_dtype).min, dtype=self._cache_dtype
        )
        mask[:, 0, 0, :prompt_len].masked_fill_(row_valid, 0.0)
        state = _DecodeState(
            cache=cache,
            mask=mask.to(device),
            positions=row_valid.sum(-1, keepdim=True),
            rows=torch.arange(rows, device=device),
            alive=torch.ones(rows, dtype=torch.bool, device=device),
        )
        out_tokens = torch.full((rows, steps), self._pad_id, dtype=torch.long, device=device)
        out_logprobs = torch.zeros((rows, steps), device=device) if params.return_logprobs else None
        stop = stop.to(device)

        choice = TokenChoice.of(params)
        tokens, logprobs = select_tokens(logits, uniforms(rows, params, generator, device), choice)
        for t in range(steps):
            out_tokens[state.rows, t] = tokens
            if out_logprobs is not None:
                out_logprobs[state.rows, t] = logprobs
            if progress is not None:
                progress.update(1)
            remaining = steps - 1 - t
            if remaining == 0:
                break
            # Rows past their stop token keep decoding until compaction drops them; their extra
            # tokens are cut off in _assemble.
            state.alive &= ~torch.isin(tokens, stop)
            alive = int(state.alive.sum())
            if alive == 0:
                if progress is not None:
                    progress.update(remaining)
                break
            dead = state.alive.numel() - alive
            compacted = bool(dead) and dead * remaining >= _COMPACTION_COST_STEPS * state.alive.numel()
            if compacted:
                index = state.alive.nonzero().squeeze(1)
                state.keep(index)
                tokens = tokens.index_select(0, index)
            state.mask[:, 0, 0, prompt_len + t] = 0.0
            # Same tensors (mutated in place) or, for the tokens, same-shaped ones as the step
            # before, unless rows were just dropped: guards need checking on the first step only.
            repeat = t > 0 and not compacted
            u = uniforms(tokens.shape[0], params, generator, device)
            inputs = (tokens[:, None], state.mask, state.positions, state.cache, u, choice)
            tokens, logprobs = self._run("decode", *inputs, repeat=repeat)
            state.positions += 1

        return out_tokens.tolist(), out_logprobs.tolist() if out_logprobs is not None else None

    def _assemble(
        self,
        outputs: dict[tuple[int, int], tuple[list[int], list[float] | None]],
        num_prompts: int,
        params: SamplingParams,
        stop: set[int],
    ) -> Samples:
        samples = []
        for i in range(num_prompts):
            for j in range(params.n):
                tokens, logprobs = outputs[(i, j)]
                end = next((k + 1 for k, tok in enumerate(tokens) if tok in stop), None)
                finished = end is not None
                if finished:
                    tokens = tokens[:end]
                    logprobs = logprobs[:end] if logprobs is not None else None
                text = None
                if self.tokenizer is not None:
                    body = tokens[:-1] if finished else tokens
                    text = self.tokenizer.decode(body, skip_special_tokens=True)
                samples.append(Sample(i, j, tokens, text, logprobs, finished))
        return Samples(samples, num_prompts, params.n, self.precision, self.backend)
