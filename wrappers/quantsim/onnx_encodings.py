"""``load_encodings`` of a ``{prefix}.encodings`` file (AIMET 0.6.1, 1.0.0 or 2.0.0, keyed by ONNX
tensor and parameter names, as ``sim.export`` of aimet-torch or torchqsim writes it): each name
is mapped to the sim's quantizer slots through the ONNX graph exported with it (docs/aimet.md
§6.4).

The mapping reads which module each ONNX node belongs to from the node's name: the module's name
itself (aimet-torch's ``sim.export`` renames nodes so, ``name#k`` for the k-th node of one module)
or the exporter's scope path ``/block/block.0/conv/Conv``. A module's outputs are the tensors its
nodes produce for other modules (or the graph's outputs), in node order; its inputs the tensors
its nodes read from other modules or the graph's inputs, in order of first use; its parameters
the initializers named ``module.param``. A graph torchqsim's ``sim.export`` wrote records the
enabled slots of its activation tensors in its metadata (torchqsim/export/quantizer_slots.py):
for those tensors the record is used instead. An entry then loads into every enabled slot on
its tensor. A 2.1.0 file's float and block-format entries load as their formats (fp8, fp4,
MXFP8, MXFP4, NVFP4 with its tensor scale); a block entry must be a weight's, with the block
axis and scales the sim computes from that weight. MXINT8, written as a 2.0.0 per-block int8 entry, loads
as MXINT8 when the entry has its form (symmetric int8, blocks of 32, steps 2^k / 64:
torchqsim.export.encodings_v21.mxint8_entry) and the weight gives its scales; other per-block
integer entries do not load.

Entries no enabled slot takes are, where aimet-torch's exporter derives them, skipped: int32
bias encodings (2.0.0 exports them from the input and weight scales), a constant's encoding,
and the encoding of a data-movement op's output that repeats its input's (a Div or Mul by a
constant: scaled by it); any other is an error naming the entry, the tensor's module and slot
(a warning with ``strict=False``).

Example::

    >>> node_module("/layer1/layer1.0/conv1/Conv", {"layer1.0.conv1"})
    'layer1.0.conv1'
    >>> node_module("fc#1", {"fc"})
    'fc'
    >>> node_module("node_conv2d", {"conv1"}, ": Root/conv1: QuantizedConv2d/conv2d: aten.conv2d")
    'conv1'
"""

import json
import os
import re

from ..encoding_codec import aimet_bool_text
from ..quantization.block_float_quantizer import BlockFloatQuantizeDequantize
from .block_encodings import block_channels
from .construction import _block_axis

__all__ = ["is_onnx_keyed", "node_module", "onnx_entries"]

_ONNX_VERSIONS = ("1.0.0", "2.0.0", "2.1.0")


def is_onnx_keyed(data: dict) -> bool:
    """Whether an encodings dict is a ``{prefix}.encodings`` file's, not ``_torch.encodings``
    (whose activations are ``{module: {"input"|"output": ...}}`` in any version: aimet-torch
    writes the version it exports, 1.0.0 included, into it): a 2.0.0 ``encodings`` list, 1.0.0
    lists of named entries, or 0.6.1 activation entries that are channel lists."""
    if "encodings" in data:
        return True
    acts, params = data.get("activation_encodings"), data.get("param_encodings")
    if str(data.get("version")) in _ONNX_VERSIONS and \
            (isinstance(acts, list) or isinstance(params, list)):
        return True
    return _named_list(acts) or _named_list(params) or \
        isinstance(acts, dict) and any(_channel_list(v) for v in acts.values())


def _named_list(value) -> bool:
    return isinstance(value, list) and bool(value) and \
        all(isinstance(e, dict) and "name" in e for e in value)


def _channel_list(value) -> bool:
    return isinstance(value, list) and bool(value) and \
        all(isinstance(e, dict) and "bitwidth" in e for e in value)


def node_module(node_name: str, modules, namespace: str | None = None) -> str | None:
    """The module (a name in `modules`) an ONNX node belongs to, or None (see module doc):
    from the node's name, else from its ``namespace`` metadata (the dynamo exporter's
    ``": Root/conv1: QuantizedConv2d/conv2d: aten.conv2d.default"``)."""
    base = node_name.split("#")[0]
    if base in modules:
        return base
    if node_name.startswith("/"):
        parts = node_name.strip("/").split("/")[:-1]
    elif namespace:
        parts = [p.split(":")[0].strip() for p in namespace.split("/")[1:-1]]
    else:
        return None
    name = ""
    for part in parts:
        name = part if name and part.startswith(name + ".") else \
            (f"{name}.{part}" if name else part)
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _module_of(node, modules) -> str | None:
    namespace = next((p.value for p in node.metadata_props if p.key == "namespace"), None)
    return node_module(node.name, modules, namespace)


def tensor_slots(graph, specs) -> tuple[dict, dict]:
    """``({tensor: [(module, kind, index), ...]}, {tensor: producing node})`` for the graph's
    activation tensors and the sim's quantized modules (`specs`: name -> ModuleSpec)."""
    inits = {t.name for t in graph.initializer}
    owner = {}  # tensor -> module of its producer (None: graph input or a foreign node)
    producer = {}
    for node in graph.node:
        for t in node.output:
            owner[t], producer[t] = _module_of(node, specs), node
    consumers: dict = {}
    for node in graph.node:
        for t in node.input:
            if t and t not in inits:
                consumers.setdefault(t, []).append(_module_of(node, specs))
    graph_outputs = {o.name for o in graph.output}
    outputs: dict = {}
    inputs: dict = {}
    for node in graph.node:
        m = _module_of(node, specs)
        if m is None:
            continue
        for t in node.output:
            if (t in graph_outputs or any(c != m for c in consumers.get(t, ()))) and \
                    t not in outputs.setdefault(m, []):
                outputs[m].append(t)
        for t in node.input:
            if t and t not in inits and owner.get(t) != m and t not in inputs.setdefault(m, []):
                inputs[m].append(t)
    slots: dict = {}
    for m, spec in specs.items():
        for kind, tensors, count in (("input", inputs.get(m, []), len(spec.inputs)),
                                     ("output", outputs.get(m, []), len(spec.outputs))):
            for i, t in enumerate(tensors[:count]):
                slots.setdefault(t, []).append((m, kind, i))
    return slots, producer


def _float_channels(sim, key, entry: dict, where: str) -> list:
    """A 2.1.0 float or block-format entry for slot `key`: its format (and NVFP4's amax); a block
    entry must be a weight's, with the block axis and scales the sim computes from the weight
    (torchqsim.export.encodings_v21.check_loaded)."""
    from ..export.encodings_v21 import check_loaded, sim_channels

    channels = sim_channels(entry, where)
    if entry["block_size"] is None:
        return channels
    name, kind, k = key
    if kind != "param":
        raise ValueError(f"{where}: a {entry['format']} block entry belongs to a weight, not to "
                         f"the {kind} {k!r} of {name!r}")
    module = sim.model.get_submodule(name)
    q = BlockFloatQuantizeDequantize(entry["format"], _block_axis(module, kind, k))
    if "amax" in channels[0]:
        q.amax.fill_(channels[0]["amax"])
        q._calibrated = True
    check_loaded(q, getattr(module, k), entry, where)
    return channels


def _mxint8(sim, key, entry: dict):
    """The MXINT8 form of a per-block int8 weight entry (2.1.0 writes MXINT8 so), else None."""
    from ..export.encodings_v21 import mxint8_entry

    name, kind, k = key
    if kind != "param":
        return None
    return mxint8_entry(entry, tuple(getattr(sim.model.get_submodule(name), k).shape))


def _channels(sim, key, entry: dict, where: str) -> list:
    """The 0.6.1 channel list of an encodings-dict entry (what ``_torch.encodings`` holds)."""
    if entry["dtype"] == "float" and "format" in entry:
        return _float_channels(sim, key, entry, where)
    if entry["dtype"] == "float":
        return [{"bitwidth": entry["bitwidth"], "dtype": "float"}]
    if entry.get("layout") == "lpbq":
        return block_channels(entry, where)
    if entry.get("layout") == "per_block":
        mx = _mxint8(sim, key, entry)
        return block_channels(entry, where) if mx is None else \
            _float_channels(sim, key, mx, where)
    sym = aimet_bool_text(entry["is_symmetric"])
    out = []
    for i, (s, o) in enumerate(zip(entry["scale"], entry["offset"])):
        c = {"bitwidth": entry["bitwidth"], "dtype": "int", "is_symmetric": sym, "offset": o,
             "scale": s}
        if entry.get("min") is not None and entry.get("max") is not None:
            c.update(min=entry["min"][i], max=entry["max"][i])
        out.append(c)
    return out


def _repeats(entry: dict, source: dict, rescale: bool) -> bool:
    """Whether `entry` is `source`'s encoding (its scale times a constant when `rescale`)."""
    keys = ("dtype", "bitwidth", "offset") + (() if rescale else ("scale",))
    return all(entry.get(k) == source.get(k) for k in keys)


def _derived(name: str, entry: dict, entries: dict, producer: dict, inits: set) -> bool:
    """Whether aimet-torch's exporter derives `entry` (see the module doc): an int32 parameter
    (bias) encoding, a constant's, or one repeating an input's encoding across a data-movement
    op (a constant Div/Mul: the scale divided or multiplied by the constant)."""
    if name in inits:
        return entry.get("dtype") == "int" and entry.get("bitwidth") == 32
    node = producer.get(name)
    if node is None:
        return False
    data = [t for t in node.input if t]
    rescale = node.op_type in ("Div", "Mul")
    return not data or any(t in entries and _repeats(entry, entries[t], rescale) for t in data)


def _read(encodings, source):
    """The encodings dict of a ``.encodings`` file (path) or of its JSON dict."""
    # Imported here: `python -m torchqsim.encodings` must find that module not yet imported
    # by the package (runpy warns otherwise, on the command line's stderr).
    from .. import encodings as enc_io

    return enc_io.read_encodings(source if source is not None else json.dumps(encodings))


def _onnx_model(onnx_model, source):
    """The ONNX model: `onnx_model` (a path or ModelProto), else ``{prefix}.onnx`` beside the
    encodings file ``{prefix}.encodings``."""
    import onnx

    if onnx_model is None:
        if source is None or not source.endswith(".encodings"):
            raise ValueError("a .encodings file keyed by ONNX tensor names needs "
                             "its ONNX model: pass onnx_model=")
        onnx_model = source[: -len(".encodings")] + ".onnx"
        if not os.path.exists(onnx_model):
            raise ValueError(f"{source} is keyed by ONNX tensor names and "
                             f"{onnx_model} (its ONNX model) does not exist: pass onnx_model=")
    if isinstance(onnx_model, (str, os.PathLike)):
        onnx_model = onnx.load(os.fspath(onnx_model), load_external_data=False)
    return onnx_model


def onnx_entries(sim, encodings, source, onnx_model):
    """``(slot key, 0.6.1 channel list, JSON path)`` for every entry of a ``.encodings`` file
    that an enabled slot of `sim` takes, and the problems (str) of the others; derived entries
    are skipped (module doc)."""
    # Imported here: the export package imports torchqsim.encodings, which `python -m
    # torchqsim.encodings` must find not yet imported by the package (runpy warns otherwise).
    from ..export.quantizer_slots import recorded_slots

    data = _read(encodings, source)
    model = _onnx_model(onnx_model, source)
    graph = model.graph
    slots, producer = tensor_slots(graph, sim._specs)
    slots.update(recorded_slots(model) or {})
    inits = {t.name for t in graph.initializer}
    named = {}
    for section in ("activation_encodings", "param_encodings", "encodings"):
        for name, entry in data[section].items():
            named[name] = (entry, f"{section}[{name!r}]")
    flat = {n: e for n, (e, _) in named.items()}
    found, problems = [], []
    for name, (entry, where) in named.items():
        # an initializer is a parameter's, or a constant an activation slot reads (a folded
        # rotary table)
        keys = (_param_key(sim, name) if name in inits else []) or slots.get(name, [])
        enabled = [k for k in keys if _enabled(sim, k)]
        if enabled:
            found += [(k, _channels(sim, k, entry, where), where) for k in enabled]
        elif not _derived(name, entry, flat, producer, inits):
            problems.append(_why(name, where, keys, graph, inits))
    return found, problems


def _param_key(sim, name: str) -> list:
    """The slot of parameter initializer `name`: ``module.param``, or ``module.param_<k>`` (the
    copy aimet-torch's 2.0.0 export makes of a transposed Linear weight)."""
    module, _, param = name.rpartition(".")
    spec = sim._specs.get(module)
    if spec is not None and param not in spec.params:
        param = re.sub(r"_\d+$", "", param)
    return [(module, "param", param)] if spec is not None and param in spec.params else []


def _enabled(sim, key) -> bool:
    module, kind, k = key
    spec = sim._specs[module]
    slot = spec.params[k] if kind == "param" else \
        (spec.inputs if kind == "input" else spec.outputs)[k]
    return slot.enabled


def _why(name: str, where: str, keys: list, graph, inits: set) -> str:
    if keys:
        described = ", ".join(f"{kind} {k!r} of {m!r}" for m, kind, k in keys)
        return f"{where}: tensor {name!r} is the {described}, disabled in this sim"
    known = name in inits or any(name in n.output for n in graph.node) or \
        any(name == i.name for i in graph.input)
    return (f"{where}: tensor {name!r} is no quantizer slot of a quantized module in this sim"
            if known else f"{where}: no tensor {name!r} in the ONNX model")
