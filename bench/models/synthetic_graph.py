"""Stretch a builder graph of a few decoder layers to a model's full depth and vocabulary.

The onnxruntime-genai builder quantizes a float model held whole in memory (an 8B model needs
far more than 24 GiB that way). Its graph is the same for every middle layer, though: only the
layer index in the names and the wiring to the previous layer change. So the builder makes a
TEMPLATE_LAYERS-layer model at the real widths (layer 0 is special: its input norm has no
residual; the last layer feeds the final norm), and this module copies the middle layer's nodes,
initializers, value infos and KV inputs/outputs for every missing layer, renumbered the way the
builder numbers them. The embedding and LM head are built at a small vocabulary (a prime from
TEMPLATE_VOCABS that occurs nowhere else in the graph) and widened to the real one here, so the
builder never holds the big tables either. Copied and widened weights get new random data,
written one tensor at a time. tests/test_synthetic.py checks the result against the builder's
own build of the whole model.
"""

from __future__ import annotations

import copy
import heapq
import re
from pathlib import Path
from typing import Any, Callable

TEMPLATE_LAYERS = 3  # first, one middle layer to copy, last
TEMPLATE_VOCABS = (1009, 1013, 1019, 1021)  # primes: the first that no config number equals
DATA_SUFFIX = ".data"
_CHUNK = 1 << 24  # elements generated at a time

# `/model/layers.1/attn/...`, `model.layers.1.mlp...`, `past_key_values.1.key`, `present.1.value`
_INDEXED = re.compile(r"(layers\.|past_key_values\.|present\.)(\d+)(?=[./])")
_LAYER = re.compile(r"layers\.(\d+)[./]")
_KV = re.compile(r"^(past_key_values|present)\.(\d+)\.")


def renumber(name: str, mapping: dict[int, int]) -> str:
    """`name` with every layer / KV index found in `mapping` replaced, in one pass."""
    def sub(m: re.Match) -> str:
        index = int(m.group(2))
        return m.group(1) + str(mapping.get(index, index))
    return _INDEXED.sub(sub, name)


def layer_of(name: str) -> int | None:
    m = _LAYER.search(name)
    return int(m.group(1)) if m else None


class GraphError(RuntimeError):
    """The template does not have the shape this module knows how to stretch."""


def _maps(layers: int) -> dict[int, list[dict[int, int]]]:
    """Template layer -> the index maps of the copies it becomes in a `layers`-deep model.

    Layer 0 stays; the middle layer 1 becomes layers 1..N-2 (its inputs come from the layer
    before); layer 2 becomes N-1; the final norm, numbered like a layer N by the builder, N.
    """
    t = TEMPLATE_LAYERS
    return {
        0: [{}],
        1: [{1: i, 0: i - 1} for i in range(1, layers - 1)],
        2: [{2: layers - 1, 1: layers - 2}],
        t: [{t: layers, t - 1: layers - 1}],
    }


def _rename_node(node: Any, mapping: dict[int, int]) -> Any:
    new = copy.deepcopy(node)
    new.name = renumber(node.name, mapping)
    new.input[:] = [renumber(n, mapping) for n in node.input]
    new.output[:] = [renumber(n, mapping) for n in node.output]
    return new


def _check_no_subgraph(node: Any) -> None:
    import onnx

    for attr in node.attribute:
        if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise GraphError(f"layer node {node.name} holds a subgraph; cannot copy it")


def _stretch_named(items: list, layers: int) -> tuple[list, dict[str, int]]:
    """Initializers or value infos: each run of consecutive middle-layer entries is followed by
    the same run for layers 2..N-2, which is the order the builder writes them in. Returns
    them and the layer of each copy, by name."""
    maps = _maps(layers)
    out: list = []
    run: list = []
    copies: dict[str, int] = {}

    def renamed(item: Any, mapping: dict[int, int]) -> Any:
        new = copy.deepcopy(item)
        new.name = renumber(item.name, mapping)
        return new

    def flush() -> None:
        for mapping in maps[1][1:]:
            for item in run:
                out.append(renamed(item, mapping))
                copies[out[-1].name] = mapping[1]
        run.clear()

    for item in items:
        layer = layer_of(item.name)
        if layer == 1:
            out.append(item)
            run.append(item)
            continue
        flush()
        if layer is not None and layer not in maps:
            raise GraphError(f"template entry {item.name} belongs to no known layer")
        out.append(renamed(item, maps[TEMPLATE_LAYERS if layer is None else layer][0]))
    flush()
    return out, copies


def _stretch_io(values: list, layers: int) -> list:
    """Graph inputs/outputs: KV entries for every layer, grouped as the builder groups them
    (all keys, then all values); the rest keep their place."""
    out = []
    for value in values:
        m = _KV.match(value.name)
        if m is None:
            out.append(value)
            continue
        if int(m.group(2)) != 0:
            continue
        for i in range(layers):
            src_index = 0 if i == 0 else (1 if i < layers - 1 else 2)
            src_name = f"{m.group(1)}.{src_index}.{value.name[m.end():]}"
            src = next(v for v in values if v.name == src_name)
            new = copy.deepcopy(src)
            new.name = renumber(src.name, {src_index: i})
            out.append(new)
    return out


def _topological(nodes: list) -> list:
    """Kahn's order, ties broken by position, so the graph stays in the builder's layer order."""
    produced = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    deps = [{produced[n] for n in node.input if n in produced} for node in nodes]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    waiting = [len(d) for d in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for u in users.get(i, ()):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        raise GraphError("the stretched graph has a cycle")
    return order


def stretch(template: Any, layers: int) -> tuple[Any, dict[str, int]]:
    """A new ModelProto `layers` deep from a TEMPLATE_LAYERS-deep one (external data not
    loaded). Returns it and the layer of every copied initializer, by name: the writer gives
    those fresh random data (their external data still names the template's middle layer)."""
    import onnx

    if layers <= TEMPLATE_LAYERS:
        raise GraphError(f"a {layers}-layer model needs no stretching")
    g, maps, nodes = template.graph, _maps(layers), []
    for node in g.node:
        layer = layer_of(node.name)
        if layer == 1:
            _check_no_subgraph(node)
            nodes.extend(_rename_node(node, m) for m in maps[1])
        elif layer is None or layer in maps:
            nodes.extend(_rename_node(node, m) for m in maps[TEMPLATE_LAYERS if layer is None
                                                              else layer])
        else:
            raise GraphError(f"template node {node.name} belongs to no known layer")

    initializers, copies = _stretch_named(list(g.initializer), layers)
    value_info, _ = _stretch_named(list(g.value_info), layers)

    model = onnx.ModelProto()
    model.CopyFrom(template)
    del model.graph.node[:], model.graph.initializer[:], model.graph.value_info[:]
    del model.graph.input[:], model.graph.output[:]
    model.graph.node.extend(_topological(nodes))
    model.graph.initializer.extend(initializers)
    model.graph.value_info.extend(value_info)
    model.graph.input.extend(_stretch_io(list(g.input), layers))
    model.graph.output.extend(_stretch_io(list(g.output), layers))
    check_wiring(model)
    return model, copies


def check_wiring(model: Any) -> None:
    """Every value a node reads is produced somewhere: a renaming slip fails here, not in ORT."""
    g = model.graph
    known = {i.name for i in g.input} | {t.name for t in g.initializer}
    known |= {o for node in g.node for o in node.output if o}
    for node in g.node:
        missing = [n for n in node.input if n and n not in known]
        if missing:
            raise GraphError(f"node {node.name} reads {missing[0]}, which nothing produces")
    missing = [o.name for o in g.output if o.name not in known]
    if missing:
        raise GraphError(f"graph output {missing[0]} is produced by no node")


def _attribute_tensors(graph: Any):
    """Tensors held in node attributes (Constant values, If branches), at any depth."""
    import onnx

    A = onnx.AttributeProto
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == A.TENSOR:
                yield attr.t
            elif attr.type == A.TENSORS:
                yield from attr.tensors
            elif attr.type in (A.GRAPH, A.GRAPHS):
                for sub in ([attr.g] if attr.type == A.GRAPH else list(attr.graphs)):
                    yield from sub.initializer
                    yield from _attribute_tensors(sub)


def _number(value: int) -> re.Pattern:
    return re.compile(rf"(?<![0-9]){value}(?![0-9])")


def _small_ints(t: Any) -> list[int]:
    """The values of an inline integer tensor (a Constant's shape, say)."""
    import onnx
    from onnx import numpy_helper

    if t.data_type not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) or (
            t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL):
        return []
    return [int(x) for x in numpy_helper.to_array(t).ravel()]


def _dims(value_info: Any) -> Any:
    return value_info.type.tensor_type.shape.dim


def occurrences(model: Any, value: int) -> list[str]:
    """Every place `value` shows up: dims, attributes, inline constants, names."""
    import onnx

    g, A, found = model.graph, onnx.AttributeProto, []
    pattern = _number(value)
    for t in g.initializer:
        if value in t.dims or pattern.search(t.name):
            found.append(f"initializer {t.name}")
    for v in [*g.input, *g.output, *g.value_info]:
        if any(d.dim_value == value for d in _dims(v)) or pattern.search(v.name):
            found.append(f"value {v.name}")
    for node in g.node:
        hits = [n for n in [node.name, *node.input, *node.output] if pattern.search(n)]
        for a in node.attribute:
            if (a.type == A.INT and a.i == value) or (a.type == A.INTS and value in a.ints) or (
                    a.type == A.TENSOR and (value in _small_ints(a.t) or pattern.search(a.t.name))):
                hits.append(a.name)
        if hits:
            found.append(f"node {node.name}")
    return found


def widen_vocab(model: Any, template_vocab: int, vocab: int) -> dict[str, tuple[int, int]]:
    """Turns the template's vocabulary size into the real one everywhere it occurs (embedding
    and head initializers, the head's N, the embedding's reshape constant and its name, the
    logits shape). Returns the widened initializers: name -> (template rows, rows)."""
    import onnx
    from onnx import numpy_helper

    layered = [o for o in occurrences(model, template_vocab) if layer_of(o) is not None]
    if layered:
        raise GraphError(f"the template vocabulary {template_vocab} also occurs in {layered[0]}")
    pattern, new = _number(template_vocab), str(vocab)
    g, A, widened = model.graph, onnx.AttributeProto, {}
    for t in g.initializer:
        t.name = pattern.sub(new, t.name)
        if template_vocab in t.dims:
            if t.dims[0] != template_vocab or list(t.dims).count(template_vocab) > 1:
                raise GraphError(f"cannot widen {t.name} {list(t.dims)} along its first axis")
            t.dims[0] = vocab
            widened[t.name] = (template_vocab, vocab)
    for v in [*g.input, *g.output, *g.value_info]:
        for d in _dims(v):
            if d.dim_value == template_vocab:
                d.dim_value = vocab
        v.name = pattern.sub(new, v.name)
    for node in g.node:
        node.name = pattern.sub(new, node.name)
        node.input[:] = [pattern.sub(new, n) for n in node.input]
        node.output[:] = [pattern.sub(new, n) for n in node.output]
        for a in node.attribute:
            if a.type == A.INT and a.i == template_vocab:
                a.i = vocab
            elif a.type == A.INTS:
                a.ints[:] = [vocab if x == template_vocab else x for x in a.ints]
            elif a.type == A.TENSOR and template_vocab in _small_ints(a.t):
                arr = numpy_helper.to_array(a.t).copy()
                arr[arr == template_vocab] = vocab
                a.t.CopyFrom(numpy_helper.from_array(arr, pattern.sub(new, a.t.name)))
            if a.type == A.TENSOR:
                a.t.name = pattern.sub(new, a.t.name)
    left = occurrences(model, template_vocab)
    if left:
        raise GraphError(f"the template vocabulary {template_vocab} is left in {left[0]}")
    return widened


_FLOATS = {1: "float32", 10: "uint16", 16: "uint16", 11: "float64"}  # FLOAT, FLOAT16, BF16, DOUBLE
_CODES = {2, 3, 21, 22}  # UINT8, INT8, UINT4, INT4: quantized codes and zero points


def _fresh(template_bytes: bytes, data_type: int, nbytes: int, rng: Any, out: Any) -> None:
    """Writes `nbytes` of new data shaped like a template tensor: random codes for quantized
    integers, the template's own values drawn with replacement for floats (norm weights,
    scales, biases, embeddings keep their distribution, so activations stay finite)."""
    import numpy as np

    if data_type in _CODES:
        for start in range(0, nbytes, _CHUNK):
            out.write(rng.bytes(min(_CHUNK, nbytes - start)))
    elif data_type in _FLOATS:
        values = np.frombuffer(template_bytes, dtype=_FLOATS[data_type])
        count = nbytes // values.itemsize
        for start in range(0, count, _CHUNK):
            out.write(rng.choice(values, size=min(_CHUNK, count - start)).tobytes())
    elif len(template_bytes) == nbytes:
        out.write(template_bytes)
    else:
        raise GraphError(f"cannot make data of type {data_type} for a widened tensor")


def _external(tensor: Any) -> dict[str, str]:
    return {e.key: e.value for e in tensor.external_data}


def write(model: Any, template_dir: Path, out_path: Path, *, seed: int,
          copies: dict[str, int], widened: dict[str, tuple[int, int]] | None = None,
          progress: Callable[[int, int], None] | None = None) -> None:
    """Writes `out_path` and its one external data file, densely packed like the builder's,
    tensor by tensor: template tensors are copied from the template's data files; copied layers
    and widened tables get new data from generators seeded by (seed, layer) or (seed, name
    hash), so a build is reproducible and memory holds one tensor at a time."""
    import zlib

    import numpy as np
    import onnx

    widened = widened or {}
    data_name = out_path.name + DATA_SUFFIX
    handles: dict[str, Any] = {}
    rngs: dict[int, Any] = {}
    tensors = [*model.graph.initializer, *_attribute_tensors(model.graph)]
    tensors = [t for t in tensors
               if t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL]
    try:
        with open(out_path.parent / data_name, "wb") as out:
            for n, tensor in enumerate(tensors):
                src = _external(tensor)
                if src["location"] not in handles:
                    handles[src["location"]] = open(template_dir / src["location"], "rb")
                fh = handles[src["location"]]
                fh.seek(int(src.get("offset", 0)))
                blob = fh.read(int(src["length"]))
                offset = out.tell()
                layer = copies.get(tensor.name)
                if layer is not None:
                    rng = rngs.setdefault(layer, np.random.default_rng([seed, layer]))
                    _fresh(blob, tensor.data_type, len(blob), rng, out)
                elif tensor.name in widened:
                    rng = np.random.default_rng([seed, zlib.crc32(tensor.name.encode())])
                    old, new = widened[tensor.name]
                    _fresh(blob, tensor.data_type, len(blob) // old * new, rng, out)
                else:
                    out.write(blob)
                del tensor.external_data[:]
                for key, value in (("location", data_name), ("offset", str(offset)),
                                   ("length", str(out.tell() - offset))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
                if progress:
                    progress(n + 1, len(tensors))
    finally:
        for fh in handles.values():
            fh.close()
    out_path.write_bytes(model.SerializeToString())
