"""One ``torch.export`` capture for both exported graphs of ``sim.export``.

``sim.export`` writes two ONNX graphs of one model: the FP32 graph, with a marker node in each
quantizer slot (:mod:`.markers`) and quantize-dequantized parameters, and the QDQ graph, with the
quantizers' ops. Capturing and decomposing the model (``torch.export`` and the exporter's
decomposition pass) is most of an export's time, so the model is captured once with both: every
quantizer runs with a forward pre-hook that first applies its slot's marker
(:func:`_markers_before_quantizers`), under :func:`.constant_qparams.constant_qparams`. The
decomposed program is then split (:func:`split_program`):

- the FP32 program drops every node recorded inside a quantizer (its ``nn_module_stack`` names
  the slot), its consumers reading the marker instead, the constants only those nodes read,
  and holds the quantize-dequantized values of the quantized parameters;
- the QDQ program drops the markers.

Each program's nodes are then renamed as a capture of it alone would have named them (an op's
name counts the earlier ops of its kind: the quantizers' ``view`` nodes would otherwise shift
the names of the model's), and so are its lifted constants (``lifted_tensor_N``); the rest is the
exporter's own pipeline (type promotion, assertion removal, translation, optimization). The
graphs are node for node the ones two separate exports give (tests/python/export/
test_one_capture.py), in a bit over half the time on transformer models.

It does not apply (:func:`one_capture_applies` is False; ``sim.export`` then exports twice)
when a quantizer object sits in two slots, when a quantized parameter is tied to another name
(the FP32 graph holds one initializer per quantized parameter, the QDQ graph the shared one),
or when the QDQ graph's opset (23 with float4) decomposes with another op registry.

Example::

    >>> import torch
    >>> from torchqsim.nn import QuantizedLinear
    >>> from torchqsim.quantization import QuantizeDequantize
    >>> from torchqsim.export.quantizer_slots import quantizer_slots
    >>> model = QuantizedLinear(4, 2)
    >>> model.output_quantizers[0] = QuantizeDequantize((), 8, symmetric=False)
    >>> model.output_quantizers[0].set_range(-1.0, 1.0)
    >>> from torchqsim.export.onnx_graph import registry
    >>> slots = quantizer_slots(model)
    >>> with torch.no_grad():
    ...     fp32, qdq = export_both(model.eval(), slots, torch.randn(3, 4), {},
    ...                             (registry(21), registry(21)), (21, 21))
    >>> [n.op_type for n in fp32.graph.node], [n.op_type for n in qdq.graph.node]
    (['Gemm', 'Marker'], ['Gemm', 'QuantizeLinear', 'DequantizeLinear'])
"""

import bisect
import contextlib
import copy
import re
from typing import Optional

import torch
from torch import fx
from torch.onnx import _flags as onnx_flags
from torch.export import graph_signature as sig
from torch.onnx._internal.exporter import _core, _decomp, _flags, _fx_passes
from torch.onnx._internal._lazy_import import onnxscript_apis

from .._forward import split_dummy_input
from .constant_qparams import constant_qparams
from .markers import MARKER_DOMAIN, QuantizerMarker
from .onnx_graph import ExportError, exporter_errors, optimize_keeping_initializers

__all__ = ["export_both", "one_capture_applies", "split_program"]

_COUNTER = re.compile(r"^(.*)_(\d+)$")
_LIFTED = re.compile(r"lifted_tensor_(\d+)$")


def one_capture_applies(registries) -> bool:
    """Whether :func:`export_both` can serve graphs with these op registries (FP32's, QDQ's):
    both decompose the same ops (see the module docstring)."""
    fp32, qdq = registries
    return fp32 is qdq or set(_decomp.get_onnx_implemented_overloads(fp32)) == \
        set(_decomp.get_onnx_implemented_overloads(qdq))


@contextlib.contextmanager
def _markers_before_quantizers(model, slots):
    """Within the block, slot ``i``'s quantizer first passes its input through
    ``QuantizerMarker(i)`` (a forward pre-hook, so that the marker is recorded inside the
    quantizer's module scope).

    A quantizer shared by several slots finds its slot from the quantized module running it
    (hooks keep the stack of running quantized modules); among one module's slots holding it,
    the calls take them in slot order (inputs, parameters, outputs: the order of a forward).
    """
    modules = dict(model.named_modules())
    indices, running, calls, handles = {}, [], {}, []
    for i, slot in enumerate(slots):
        indices.setdefault((slot.module_name, id(slot.quantizer)), []).append(i)
    markers = [QuantizerMarker(i) for i in range(len(slots))]

    def before(quantizer_id):  # hooks are bound to ids: torch.export may run module copies
        def hook(_, args):
            key = (running[-1], quantizer_id)
            count = calls[key] = calls.get(key, -1) + 1
            found = indices[key]
            return (markers[found[count % len(found)]](args[0]), *args[1:])
        return hook

    def enter(name):
        def hook(*_):
            running.append(name)
        return hook

    def leave(*_):
        running.pop()

    try:
        for name in {s.module_name for s in slots}:
            handles.append(modules[name].register_forward_pre_hook(enter(name)))
            handles.append(modules[name].register_forward_hook(leave, always_call=True))
        for quantizer_id, quantizer in {id(s.quantizer): s.quantizer for s in slots}.items():
            handles.append(quantizer.register_forward_pre_hook(before(quantizer_id)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _is_marker(node: fx.Node) -> bool:
    return node.op == "call_function" and \
        node.target is torch.ops.onnx_symbolic._symbolic.default and \
        node.kwargs.get("domain") == MARKER_DOMAIN


def _quantizer_of(node: fx.Node, paths: frozenset):
    """The path of the quantizer ``node`` was recorded in, or None."""
    stack = node.meta.get("nn_module_stack") or {}
    return next((path for path, _ in stack.values() if path in paths), None)


def _drop(graph: fx.Graph, node: fx.Node, replacement) -> None:
    node.replace_all_uses_with(replacement)
    graph.erase_node(node)


def _drop_quantizer_nodes(graph: fx.Graph, paths: frozenset, constants: dict) -> tuple:
    """Erases the nodes recorded inside the quantizers (``paths``) but the markers; a consumer
    outside reads the marker its quantizer ran last; then the placeholders only they read, and
    the unread constants of the quantizers (``constants``: placeholder name -> target; those of
    a quantizer whose output nothing reads, its nodes gone as dead code). Returns (the names of
    the nodes erased, those of the placeholders)."""
    marker, inside = {}, []
    for node in list(graph.nodes):
        path = _quantizer_of(node, paths)
        if path is None:
            continue
        if _is_marker(node):
            marker[path] = node
            continue
        inside.append(node)
        for user in [u for u in node.users if _quantizer_of(u, paths) != path]:
            if path not in marker:
                raise ValueError(f"quantizer {path!r} has no marker before node {node.name}")
            user.replace_input_with(node, marker[path])
    read = {a for node in inside for a in node.all_input_nodes if a.op == "placeholder"}
    for node in reversed(inside):
        graph.erase_node(node)
    read.update(n for n in graph.nodes if n.op == "placeholder" and
                constants.get(n.name, "").rpartition(".")[0] in paths)
    unread = [p for p in read if not p.users]
    for node in unread:
        graph.erase_node(node)
    return [n.name for n in inside], {p.name for p in unread}


def _read_own_parameters(graph: fx.Graph, signature, parameters: dict) -> None:
    """Makes the marker of each parameter slot (``{marker index: parameter name}``) read that
    parameter's placeholder: a capture gives tied parameters (GPT-2's ``lm_head.weight`` and
    ``transformer.wte.weight``) one placeholder, the FP32 graph one per quantized parameter."""
    placeholders = {n.name: n for n in graph.nodes if n.op == "placeholder"}
    by_name = {t: placeholders[i] for i, t in signature.inputs_to_parameters.items()}
    for node in graph.nodes:
        if _is_marker(node) and node.kwargs["attr_ints"][0] in parameters:
            source = node.args[0][0]
            own = by_name[parameters[node.kwargs["attr_ints"][0]]]
            if source.op == "placeholder" and source is not own:
                node.replace_input_with(source, own)


def _counter(name: str) -> tuple:
    """(base, number) of a node name: ``view_3`` -> ("view", 3), ``view`` -> ("view", 0)."""
    match = _COUNTER.match(name)
    return (match.group(1), int(match.group(2))) if match else (name, 0)


def _renamer(erased: list):
    """``node -> name`` that a capture without the ``erased`` nodes gives it: a node is named
    by its op and the count of earlier nodes of that op (``view_3``), and a lifted constant
    ``..._lifted_tensor_N`` by the count of earlier lifted constants."""
    calls, constants = {}, []
    for name in erased:
        lifted = _LIFTED.search(name)
        if lifted:
            constants.append(int(lifted.group(1)))
        else:
            base, number = _counter(name)
            calls.setdefault(base, []).append(number)
    calls = {base: sorted(numbers) for base, numbers in calls.items()}
    constants.sort()

    def rename(node: fx.Node) -> str:
        if node.op == "placeholder":
            lifted = _LIFTED.search(node.name)
            if lifted is None:
                return node.name
            number = int(lifted.group(1))
            number -= bisect.bisect_left(constants, number)
            return f"{node.name[:lifted.start()]}lifted_tensor_{number}"
        base, number = _counter(node.name)
        number -= bisect.bisect_left(calls.get(base, ()), number)
        return f"{base}_{number}" if number else base
    return rename


def _renamed(gm: fx.GraphModule, erased: list) -> fx.GraphModule:
    """A copy of ``gm`` whose nodes are named as a capture without the ``erased`` nodes (their
    names) names them (:func:`_renamer`)."""
    rename = _renamer(erased)
    graph = fx.Graph()
    graph._codegen = copy.deepcopy(gm.graph._codegen)
    env = {}
    for node in gm.graph.nodes:
        new = graph.create_node(node.op, node.target, fx.map_arg(node.args, env.__getitem__),
                                fx.map_arg(node.kwargs, env.__getitem__), rename(node),
                                node.type)
        new.meta = dict(node.meta)
        env[node] = new
    return fx.GraphModule(gm, graph)


def _constant_target(target: str, placeholder: str) -> str:
    """``target`` numbered as the renamed ``placeholder`` of a lifted constant."""
    found = _LIFTED.search(placeholder)
    return _LIFTED.sub(found.group(0), target) if found and _LIFTED.search(target) else target


def _signature(signature, graph: fx.Graph, dropped: set):
    """``signature`` for ``graph`` (a renamed copy without the ``dropped`` inputs): each
    argument named as the placeholder or output value now in its place."""
    def arg(a, node):
        return type(a)(name=node.name) if isinstance(a, sig.TensorArgument) else a

    def target(spec, node):
        if spec.kind != sig.InputKind.CONSTANT_TENSOR:
            return spec.target
        return _constant_target(spec.target, node.name)

    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    kept = [s for s in signature.input_specs if s.arg.name not in dropped]
    inputs = [sig.InputSpec(s.kind, arg(s.arg, n), target(s, n), s.persistent)
              for s, n in zip(kept, placeholders, strict=True)]
    outputs = [sig.OutputSpec(s.kind, arg(s.arg, n), s.target)
               for s, n in zip(signature.output_specs, graph.output_node().args[0], strict=True)]
    return sig.ExportGraphSignature(inputs, outputs)


def split_program(program, quantizer_paths: frozenset, fp32_parameters: Optional[dict]):
    """The FP32 or the QDQ program of a decomposed capture of the marked model.

    Args:
        program: the decomposed ``ExportedProgram`` (:func:`export_both`'s capture).
        quantizer_paths: every module path of the quantizers the capture marked.
        fp32_parameters: None for the QDQ program (markers dropped); for the FP32 program
            (quantizer nodes dropped) ``{marker index: (parameter name, value)}`` of the
            parameter slots, the values replacing the parameters' (quantize-dequantized ones).
    """
    gm = copy.deepcopy(program.graph_module)
    graph = gm.graph
    old = program.graph_signature
    dropped, state_dict = set(), program.state_dict
    if fp32_parameters is None:
        erased = [n for n in graph.nodes if _is_marker(n)]
        for node in erased:
            _drop(graph, node, node.args[0][0])
        erased = [n.name for n in erased]
    else:
        constants = {s.arg.name: s.target for s in old.input_specs
                     if s.kind == sig.InputKind.CONSTANT_TENSOR}
        erased, dropped = _drop_quantizer_nodes(graph, quantizer_paths, constants)
        _read_own_parameters(graph, old, {i: name for i, (name, _) in fp32_parameters.items()})
        state_dict = {**state_dict, **dict(fp32_parameters.values())}
    gm = _renamed(gm, erased + sorted(dropped))
    new = _signature(old, gm.graph, dropped)
    kept = [s for s in old.input_specs if s.arg.name not in dropped]
    constants = {n.target: program.constants[o.target] for o, n in zip(kept, new.input_specs)
                 if o.kind in (sig.InputKind.CONSTANT_TENSOR, sig.InputKind.CUSTOM_OBJ)}
    return program._update(gm, new, state_dict=state_dict, constants=constants)


@_flags.set_onnx_exporting_flag
def _capture(model, slots, dummy_input, registry):
    """The decomposed program of ``model`` with markers before its quantizers, as the exporter
    captures and decomposes (``torch.onnx._internal.exporter._core.export``: non-strict
    ``torch.export``, then the registry's decompositions)."""
    args, kwargs = split_dummy_input(dummy_input)
    with _markers_before_quantizers(model, slots), constant_qparams(model), \
            torch.fx.experimental._config.patch(backed_size_oblivious=True):
        program = torch.export.export(
            model, args, kwargs=kwargs, strict=False,
            prefer_deferred_runtime_asserts_over_guards=
            onnx_flags.PREFER_DEFERRED_RUNTIME_ASSERTS_OVER_GUARDS)
        return _fx_passes.decompose_with_registry(program, registry)


@_flags.set_onnx_exporting_flag
def _to_onnx(program, registry, opset: int, optimize: bool):
    """The exporter's steps after the decomposition (``_core.export``'s), to a ModelProto."""
    with torch.fx.experimental._config.patch(backed_size_oblivious=True):
        _fx_passes.insert_type_promotion_nodes(program.graph_module)
        program._graph_module = _fx_passes.remove_assertion_nodes(program.graph_module)
    onnx_program = _core._exported_program_to_onnx_program(program, registry=registry)
    onnx_program.model = onnxscript_apis.convert_version(onnx_program.model, opset)
    if optimize:
        onnx_program.optimize()
    return onnx_program.model_proto


def export_both(model, slots, dummy_input, params: dict, registries, opsets) -> Optional[tuple]:
    """(FP32 ModelProto with markers, QDQ ModelProto) of ``model`` from one capture, or None
    where the capture fails (the caller then exports twice, as ``torch.onnx.export`` would
    retry the capture in strict mode and report its own error).

    Args:
        model: the quantized model in eval mode (call under ``torch.no_grad()``).
        slots: its enabled quantizer slots, each holding an encoding.
        dummy_input: a tensor, a tuple of positional inputs or a dict of keyword inputs.
        params: ``{slot index: (parameter name, quantize-dequantized value)}`` of the
            parameter slots, for the FP32 graph.
        registries: the op registries of the FP32 and the QDQ graph
            (:func:`one_capture_applies` must hold).
        opsets: their opsets.

    Raises:
        ExportError: a graph's translation to ONNX failed (named).
    """
    try:
        with exporter_errors("the model"):
            program = _capture(model, slots, dummy_input, registries[0])
    except ExportError:
        return None
    quantizers = {id(s.quantizer) for s in slots}
    paths = frozenset(n for n, m in model.named_modules(remove_duplicate=False)
                      if id(m) in quantizers)
    with exporter_errors("the FP32 graph"):
        fp32 = _to_onnx(split_program(program, paths, params), registries[0], opsets[0], False)
    with exporter_errors("the QDQ graph"):
        qdq = _to_onnx(split_program(program, paths, None), registries[1], opsets[1], True)
    return optimize_keeping_initializers(fp32), qdq
