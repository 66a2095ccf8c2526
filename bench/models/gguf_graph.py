"""The `gguf` variant's decoder graph: onnxruntime-genai's builder layout, the GGUF's own weights.

Same inputs, outputs and fused ops as the builder's CPU graph (so both backends, the footprint
and the quality scoring read it unchanged): SimplifiedLayerNormalization and
SkipSimplifiedLayerNormalization for the RMS norms and residuals, GroupQueryAttention with
rotary embedding and an in-place KV cache, SiLU as Sigmoid x Mul, GatherBlockQuantized for the
token embeddings. Every weight matrix is MatMulNBits on the GGUF's blocks (gguf_blocks) plus
the affine term where the type has block minimums; q, k and v share one MatMulNBits only where
their block layouts agree. A tied head reads the embedding table's own initializers. Gemma 3
adds its scaled embeddings, q/k and sandwich norms, GELU and sliding-window layers with their
own RoPE base (gguf_config.DecoderConfig). Built with numpy and onnx only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.models import gguf_blocks, gguf_onnx
from bench.models.gguf_config import DecoderConfig

if TYPE_CHECKING:
    from bench.models.gguf_tensors import GgufTensors


class _Graph:
    """Nodes and initializers being collected; names follow the builder's `/model/...`."""

    def __init__(self, accuracy_level: int, tensors: GgufTensors) -> None:
        self.tensors = tensors
        self.nodes: list = []
        self.inits: list = []
        self.accuracy_level = accuracy_level
        # initializer names per registered weight; the decoded arrays are not kept (the
        # protobuf holds their bytes), so each matrix is in memory once while the graph grows
        self.weights: dict[str, gguf_onnx.WeightNames] = {}
        self.sources: dict[str, str] = {}  # GGUF tensor -> its block type (manifest)
        self._consts: set[str] = set()
        self._block_sums: dict[tuple[str, int, int], str] = {}  # (x, blocks, size) -> sum

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str,
             domain: str | None = None, **attrs: Any) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain,
                                           **attrs))

    def const(self, name: str, value: Any) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def i64(self, values: list[int] | int) -> str:
        import numpy as np

        name = f"/model/constants/INT64/{values}"
        if name not in self._consts:
            self._consts.add(name)
            self.const(name, np.array(values, dtype=np.int64))
        return name

    def nbits(self, key: str, w: Any, tensor_names: list[str]) -> gguf_onnx.WeightNames:
        """Registers a weight once under `key` (its initializer prefix)."""
        if key not in self.weights:
            names, inits = gguf_onnx.weight_initializers(w, f"{key}.")
            self.inits += inits
            self.weights[key] = names
        for t in tensor_names:  # each GGUF tensor's own type, also inside a packed matrix
            self.sources[t] = self.tensors.info(t).type_name
        return self.weights[key]

    def matmul(self, w: Any, key: str, tensor_names: list[str], x: str, y: str,
               prefix: str, x_rank: int = 2) -> None:
        wn = self.nbits(key, w, tensor_names)
        shared = self._block_sums.get((x, w.n_blocks, w.block_size))
        indicator = None
        if wn.block_min_t is not None and x_rank == 2 and shared is None:
            indicator = f"block_indicator.K{w.k}.b{w.block_size}"  # one per shape, shared
            if indicator not in self._consts:
                self._consts.add(indicator)
                self.const(indicator, gguf_onnx.block_indicator(w.k, w.block_size))
        part = gguf_onnx.matmul_nodes(w, wn, x, y, prefix, accuracy_level=self.accuracy_level,
                                      x_rank=x_rank, block_sum=shared, indicator=indicator)
        if wn.block_min_t is not None and shared is None:
            self._block_sums[(x, w.n_blocks, w.block_size)] = f"{prefix}block_sum"
        self.nodes += part.nodes
        self.inits += part.initializers

    def linear(self, name: str, key: str, x: str, y: str, prefix: str, x_rank: int = 2,
               w: Any = None) -> None:
        """y = x @ W.T for the GGUF tensor `name` (`w`: its blocks, when the caller decoded
        them already)."""
        import numpy as np

        if self.tensors.is_quantized(name):
            self.matmul(w if w is not None else self.tensors.nbits(name), key, [name], x, y,
                        prefix, x_rank)
            return
        # a float matrix (F16/F32 in the file): an exact float MatMul
        self.sources[name] = self.tensors.info(name).type_name
        self.const(f"{key}.weight_t", np.ascontiguousarray(self.tensors.floats(name).T))
        self.node("MatMul", [x, f"{key}.weight_t"], [y], f"{prefix}MatMul")


def build_model(cfg: DecoderConfig, tensors: GgufTensors, *, accuracy_level: int,
                logits: str) -> tuple[Any, dict[str, Any]]:
    """The ModelProto (weights in memory) and what the manifest records about its weights."""
    import numpy as np
    from onnx import TensorProto, helper

    g = _Graph(accuracy_level, tensors)
    seqlens, total = _mask_inputs(g)
    rope = {False: _rotary_caches(g, cfg, cfg.rope_base, "")}
    if any(cfg.swa_layers):  # sliding-window layers rotate with their own base
        rope[True] = _rotary_caches(g, cfg, cfg.rope_base_swa or cfg.rope_base, "_swa")
    # The residual stream is 2-D [tokens, hidden] (the affine terms are then one Gemm each);
    # GroupQueryAttention and the head see [batch, sequence, ...].
    g.node("Shape", ["input_ids"], ["/model/shape/ids"], "/model/shape/Shape")
    g.node("Concat", ["/model/shape/ids", g.i64([-1])], ["/model/shape/3d"],
           "/model/shape/Concat", axis=0)
    x = "/model/embed_tokens/2d"
    embedded, table = _embedding(g, cfg, tensors)
    table = table if cfg.tied_head else None  # kept only for a head that reuses it
    g.node("Reshape", [embedded, g.i64([-1, cfg.hidden])], [x],
           "/model/embed_tokens/To2D")
    if cfg.embed_scale != 1.0:  # Gemma: embeddings times sqrt(hidden), in fp32 as llama.cpp
        scale = g.const("/model/embed_tokens/scale", np.array(cfg.embed_scale, np.float32))
        g.node("Mul", [x, scale], ["/model/embed_tokens/scaled"], "/model/embed_tokens/Mul")
        x = "/model/embed_tokens/scaled"
    residual, last_out = x, None
    kv_in, kv_out = [], []
    for i in range(cfg.layers):
        h, residual = _norm(g, f"/model/layers.{i}/input_layernorm", residual, last_out,
                            tensors.floats(f"blk.{i}.attn_norm.weight"), cfg.rms_eps,
                            f"model.layers.{i}.input_layernorm.weight")
        swa = bool(cfg.swa_layers and cfg.swa_layers[i])
        attn, keys = _attention(g, cfg, tensors, i, h, seqlens, total, *rope[swa], swa)
        kv_in += keys[0]
        kv_out += keys[1]
        if cfg.gemma:  # normed after attention, normed again before the MLP and after it
            attn = _norm(g, f"/model/layers.{i}/post_attention_layernorm", attn, None,
                         tensors.floats(f"blk.{i}.post_attention_norm.weight"), cfg.rms_eps,
                         f"model.layers.{i}.post_attention_layernorm.weight")[0]
        pre_mlp = "pre_feedforward_layernorm" if cfg.gemma else "post_attention_layernorm"
        h2, residual = _norm(g, f"/model/layers.{i}/{pre_mlp}", residual, attn,
                             tensors.floats(f"blk.{i}.ffn_norm.weight"), cfg.rms_eps,
                             f"model.layers.{i}.{pre_mlp}.weight")
        last_out = _mlp(g, tensors, i, h2, cfg.ffn, gelu=cfg.gemma)
        if cfg.gemma:
            last_out = _norm(g, f"/model/layers.{i}/post_feedforward_layernorm", last_out,
                             None, tensors.floats(f"blk.{i}.post_ffw_norm.weight"),
                             cfg.rms_eps,
                             f"model.layers.{i}.post_feedforward_layernorm.weight")[0]
    final2d, _ = _norm(g, f"/model/layers.{cfg.layers}/final_norm_layernorm", residual,
                       last_out, tensors.floats("output_norm.weight"), cfg.rms_eps,
                       "model.norm.weight")
    final = "/model/final_norm/3d"
    g.node("Reshape", [final2d, "/model/shape/3d"], [final], "/model/final_norm/To3D")
    if logits == "last":
        g.node("Gather", [final, g.i64(-1)], ["/lm_head/prune/Gather/output_0"],
               "/lm_head/prune/Gather", axis=1)
        g.node("Unsqueeze", ["/lm_head/prune/Gather/output_0", g.i64([1])],
               ["/lm_head/prune/Unsqueeze/output_0"], "/lm_head/prune/Unsqueeze")
        final = "/lm_head/prune/Unsqueeze/output_0"
    head = "token_embd.weight" if cfg.tied_head else "output.weight"
    # a tied head reuses the table's blocks, decoded once for the embedding lookup
    g.linear(head, "lm_head" if not cfg.tied_head else "token_embd", final, "logits",
             "/lm_head/", x_rank=3, w=table)

    batch, seq = "batch_size", "sequence_length"
    kv_shape = [batch, cfg.kv_heads, "past_sequence_length", cfg.head_dim]
    present_shape = [batch, cfg.kv_heads, "total_sequence_length", cfg.head_dim]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                            [batch, "total_sequence_length"])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape) for n in kv_in]
    outputs = [helper.make_tensor_value_info(
        "logits", TensorProto.FLOAT, [batch, 1 if logits == "last" else seq, cfg.vocab])]
    outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, present_shape)
                for n in kv_out]
    graph = helper.make_graph(g.nodes, "gguf_decoder", inputs, outputs, initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", gguf_onnx.OPSET), helper.make_opsetid(gguf_onnx.MS_DOMAIN, 1)],
        producer_name="edgebench gguf variant")
    model.ir_version = min(model.ir_version, 10)
    widened = {t: n for t, n in _count(g.sources).items()
               if t in gguf_blocks.LAYOUTS and gguf_blocks.LAYOUTS[t].widened_from}
    summary = {"block_types": dict(sorted(_count(g.sources).items())),
               "widened_to_8_bits": dict(sorted(widened.items())),  # GGUF tensors, by type
               "packed_qkv_layers": sum(1 for k in g.weights if k.endswith("qkv_proj")),
               "packed_gate_up_layers": sum(1 for k in g.weights if k.endswith("gate_up_proj")),
               "accuracy_level": accuracy_level}
    return model, summary


def _count(sources: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind in sources.values():
        out[kind] = out.get(kind, 0) + 1
    return out


def _mask_inputs(g: _Graph) -> tuple[str, str]:
    """seqlens_k (tokens so far - 1) and the total length, int32, as GroupQueryAttention wants."""
    from onnx import TensorProto

    p = "/model/attn_mask_reformat/attn_mask_subgraph"
    g.node("ReduceSum", ["attention_mask", g.i64([1])], [f"{p}/ReduceSum/output_0"],
           f"{p}/ReduceSum", keepdims=0)
    g.node("Sub", [f"{p}/ReduceSum/output_0", g.i64([1])], [f"{p}/Sub/output_0"], f"{p}/Sub")
    g.node("Cast", [f"{p}/Sub/output_0"], [f"{p}/Sub/Cast/output_0"], f"{p}/Sub/Cast",
           to=TensorProto.INT32)
    g.node("Shape", ["attention_mask"], [f"{p}/Shape/output_0"], f"{p}/Shape")
    g.node("Gather", [f"{p}/Shape/output_0", g.i64(1)], [f"{p}/Gather/output_0"],
           f"{p}/Gather", axis=0)
    g.node("Cast", [f"{p}/Gather/output_0"], [f"{p}/Gather/Cast/output_0"], f"{p}/Gather/Cast",
           to=TensorProto.INT32)
    return f"{p}/Sub/Cast/output_0", f"{p}/Gather/Cast/output_0"


def _rotary_caches(g: _Graph, cfg: DecoderConfig, base: float, suffix: str) -> tuple[str, str]:
    """cos/sin [context, head_dim / 2] of position x base^(-2i / head_dim)."""
    import numpy as np

    inv_freq = 1.0 / (base ** (np.arange(0, cfg.head_dim, 2, dtype=np.float64) / cfg.head_dim))
    angles = np.outer(np.arange(cfg.context_length, dtype=np.float64), inv_freq)
    return (g.const(f"cos_cache{suffix}", np.cos(angles).astype(np.float32)),
            g.const(f"sin_cache{suffix}", np.sin(angles).astype(np.float32)))


def _embedding(g: _Graph, cfg: DecoderConfig, tensors: GgufTensors) -> tuple[str, Any]:
    """One row per token: GatherBlockQuantized on the table's blocks (+ the row's block
    minimums for affine types), or a float Gather for an unquantized table. Returns the
    output and the decoded blocks (None for a float table)."""
    import numpy as np

    p = "/model/embed_tokens"
    out = f"{p}/output_0"
    if not tensors.is_quantized("token_embd.weight"):
        g.const("model.embed_tokens.weight", tensors.floats("token_embd.weight"))
        g.sources["token_embd.weight"] = tensors.info("token_embd.weight").type_name
        g.node("Gather", ["model.embed_tokens.weight", "input_ids"], [out], f"{p}/Gather")
        return out, None
    w = tensors.nbits("token_embd.weight")
    names = g.nbits("token_embd", w, ["token_embd.weight"])
    rows = [w.n, -1]
    g.node("Reshape", [names.b, g.i64(rows)], [f"{p}/data"], f"{p}/Reshape")
    inputs = [f"{p}/data", "input_ids", names.scales]
    if names.zero_points:
        inputs.append(names.zero_points)
    gathered = out if w.block_min is None else f"{p}/GatherBlockQuantized/output_0"
    g.node("GatherBlockQuantized", inputs, [gathered], f"{p}/GatherBlockQuantized",
           domain=gguf_onnx.MS_DOMAIN, bits=w.bits, block_size=w.block_size, gather_axis=0,
           quantize_axis=1)
    if w.block_min is not None:  # + each block's minimum, repeated over its elements
        mins = g.const("token_embd.block_min", np.ascontiguousarray(w.block_min))
        g.node("Gather", [mins, "input_ids"], [f"{p}/mins"], f"{p}/GatherMins")
        g.node("Unsqueeze", [f"{p}/mins", g.i64([-1])], [f"{p}/mins4"], f"{p}/UnsqueezeMins")
        g.node("Reshape", [gathered, g.i64([0, 0, w.n_blocks, w.block_size])],
               [f"{p}/blocks"], f"{p}/BlockReshape")
        g.node("Add", [f"{p}/blocks", f"{p}/mins4"], [f"{p}/with_mins"], f"{p}/AddMins")
        g.node("Reshape", [f"{p}/with_mins", g.i64([0, 0, cfg.hidden])], [out],
               f"{p}/RowReshape")
    return out, w


def _norm(g: _Graph, p: str, residual: str, add: str | None, weight: Any, eps: float,
          weight_name: str) -> tuple[str, str]:
    """RMS norm of residual (+ add): (normed, the new residual stream)."""
    from bench.models.gguf_onnx import MS_DOMAIN

    w = g.const(weight_name, weight)
    if add is None:
        g.node("SimplifiedLayerNormalization", [residual, w], [f"{p}/output_0"],
               f"{p}/LayerNorm", axis=-1, epsilon=eps, stash_type=1)
        return f"{p}/output_0", residual
    g.node("SkipSimplifiedLayerNormalization", [residual, add, w],
           [f"{p}/output_0", "", "", f"{p}/output_3"], f"{p}/SkipLayerNorm", domain=MS_DOMAIN,
           epsilon=eps)
    return f"{p}/output_0", f"{p}/output_3"


def _attention(g: _Graph, cfg: DecoderConfig, tensors: GgufTensors, i: int, h: str,
               seqlens: str, total: str, cos: str, sin: str, swa: bool = False):
    import numpy as np

    p = f"/model/layers.{i}/attn"
    key = f"model.layers.{i}.attn"
    names = [f"blk.{i}.attn_{x}.weight" for x in ("q", "k", "v")]
    decoded = ([tensors.nbits(n) for n in names]
               if all(tensors.is_quantized(n) for n in names) else None)
    packed = gguf_onnx.concat_n(decoded) if decoded else None
    parts: list[str]
    if packed is not None:
        g.matmul(packed, f"{key}.qkv_proj", names, h, f"{p}/qkv_proj/MatMul/output_0",
                 f"{p}/qkv_proj/")
        parts = [f"{p}/qkv_proj/MatMul/output_0"]
        biases = [f"blk.{i}.attn_{x}.bias" for x in ("q", "k", "v")]
        if cfg.qkv_bias:
            bias = g.const(f"{key}.qkv_proj.bias",
                           np.concatenate([tensors.floats(b) for b in biases]))
            g.node("Add", [parts[0], bias], [f"{p}/qkv_proj/Add/output_0"], f"{p}/qkv_proj/Add")
            parts = [f"{p}/qkv_proj/Add/output_0"]
        q_in = [parts[0], "", ""]
        if cfg.gemma:  # q and k are normed apart: split them out of the packed product
            q_in = [f"{p}/qkv_proj/Split/output_{j}" for j in range(3)]
            sizes = g.i64([cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim,
                           cfg.kv_heads * cfg.head_dim])
            g.node("Split", [parts[0], sizes], q_in, f"{p}/qkv_proj/Split", axis=-1)
    else:
        q_in = []
        for j, (x, name) in enumerate(zip("qkv", names)):
            out = f"{p}/{x}_proj/MatMul/output_0"
            g.linear(name, f"{key}.{x}_proj", h, out, f"{p}/{x}_proj/",
                     w=decoded[j] if decoded else None)
            if cfg.qkv_bias:
                bias = g.const(f"{key}.{x}_proj.bias", tensors.floats(f"blk.{i}.attn_{x}.bias"))
                g.node("Add", [out, bias], [f"{p}/{x}_proj/Add/output_0"], f"{p}/{x}_proj/Add")
                out = f"{p}/{x}_proj/Add/output_0"
            q_in.append(out)
    if cfg.gemma:  # RMS norm of each head's q and k before RoPE
        for j, (x, n) in enumerate((("q", cfg.heads), ("k", cfg.kv_heads))):
            q_in[j] = _head_norm(g, cfg, f"{p}/{x}_norm", q_in[j], n,
                                 tensors.floats(f"blk.{i}.attn_{x}_norm.weight"),
                                 f"model.layers.{i}.attn.{x}_norm.layernorm.weight")
    past = [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
    present = [f"present.{i}.key", f"present.{i}.value"]
    for j, name in enumerate(q_in):
        if name:
            g.node("Reshape", [name, "/model/shape/3d"], [f"{name}/3d"], f"{p}/To3D_{j}")
            q_in[j] = f"{name}/3d"
    g.node("GroupQueryAttention", q_in + past + [seqlens, total, cos, sin],
           [f"{p}/GroupQueryAttention/output_3d"] + present, f"{p}/GroupQueryAttention",
           domain=gguf_onnx.MS_DOMAIN, num_heads=cfg.heads, kv_num_heads=cfg.kv_heads,
           scale=float(cfg.attn_scale or 1.0 / np.sqrt(cfg.head_dim)),
           # a query sees the last `sliding_window` positions, its own included, as in
           # llama.cpp (tests/test_gguf_variant.py checks the boundary)
           local_window_size=cfg.sliding_window if swa else -1, softcap=0.0,
           do_rotary=1, rotary_interleaved=int(cfg.rope_interleaved))
    g.node("Reshape", [f"{p}/GroupQueryAttention/output_3d", g.i64([-1, cfg.heads * cfg.head_dim])],
           [f"{p}/GroupQueryAttention/output_0"], f"{p}/To2D")
    out = f"{p}/o_proj/MatMul/output_0"
    g.linear(f"blk.{i}.attn_output.weight", f"{key}.o_proj",
             f"{p}/GroupQueryAttention/output_0", out, f"{p}/o_proj/")
    return out, (past, present)


def _head_norm(g: _Graph, cfg: DecoderConfig, p: str, x: str, heads: int, weight: Any,
               weight_name: str) -> str:
    """RMS norm over each head's head_dim values of x [tokens, heads x head_dim]."""
    g.node("Reshape", [x, g.i64([-1, cfg.head_dim])], [f"{p}/Reshape_1/output_0"],
           f"{p}/Reshape_1")
    normed = _norm(g, p, f"{p}/Reshape_1/output_0", None, weight, cfg.rms_eps, weight_name)[0]
    g.node("Reshape", [normed, g.i64([-1, heads * cfg.head_dim])], [f"{p}/Reshape_2/output_0"],
           f"{p}/Reshape_2")
    return f"{p}/Reshape_2/output_0"


def _mlp(g: _Graph, tensors: GgufTensors, i: int, h: str, ffn: int, gelu: bool = False) -> str:
    """SiLU(gate) x up -> down (GELU with the tanh approximation for Gemma); gate and up share
    one MatMulNBits (then a Split) where their block layouts agree."""
    import numpy as np

    p = f"/model/layers.{i}/mlp"
    key = f"model.layers.{i}.mlp"
    gate, up, down = (f"{p}/{x}_proj/MatMul/output_0" for x in ("gate", "up", "down"))
    names = [f"blk.{i}.ffn_gate.weight", f"blk.{i}.ffn_up.weight"]
    decoded = ([tensors.nbits(n) for n in names]
               if all(tensors.is_quantized(n) for n in names) else None)
    packed = gguf_onnx.concat_n(decoded) if decoded else None
    if packed is not None:
        g.matmul(packed, f"{key}.gate_up_proj", names, h, f"{p}/gate_up_proj/MatMul/output_0",
                 f"{p}/gate_up_proj/")
        split = g.const(f"{p}/split_sizes", np.array([ffn, ffn], dtype=np.int64))
        g.node("Split", [f"{p}/gate_up_proj/MatMul/output_0", split], [gate, up],
               f"{p}/gate_up_proj/Split", axis=-1)
    else:
        g.linear(names[0], f"{key}.gate_proj", h, gate, f"{p}/gate_proj/",
                 w=decoded[0] if decoded else None)
        g.linear(names[1], f"{key}.up_proj", h, up, f"{p}/up_proj/",
                 w=decoded[1] if decoded else None)
    if gelu:
        act = f"{p}/act_fn/Gelu/output_0"
        g.node("Gelu", [gate], [act], f"{p}/act_fn/Gelu", approximate="tanh")
    else:
        act = f"{p}/act_fn/Mul/output_0"
        g.node("Sigmoid", [gate], [f"{p}/act_fn/Sigmoid/output_0"], f"{p}/act_fn/Sigmoid")
        g.node("Mul", [gate, f"{p}/act_fn/Sigmoid/output_0"], [act], f"{p}/act_fn/Mul")
    g.node("Mul", [act, up], [f"{p}/Mul/output_0"], f"{p}/Mul")
    g.linear(f"blk.{i}.ffn_down.weight", f"{key}.down_proj", f"{p}/Mul/output_0",
             down, f"{p}/down_proj/")
    return down
