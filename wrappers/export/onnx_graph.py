"""Running the dynamo ONNX exporter on a quantized model, and what an exported graph holds.

Example::

    >>> import torch
    >>> proto = export_onnx(torch.nn.Linear(2, 2), torch.randn(1, 2), "example")
    >>> sorted(graph_tensor_names(proto))
    ['bias', 'input', 'linear', 'weight']
"""

import contextlib
import functools
import logging
import warnings

import onnx_ir as ir
import torch
from onnx import ModelProto, checker
from onnx_ir.passes import common
from onnxscript import optimizer, rewriter
from torch import nn
from torch.onnx._internal.exporter import _core, _registration

from .._forward import split_dummy_input
from .qdq_translation import OPSET, QDQ_TRANSLATION_TABLE

__all__ = ["ExportError", "check_model", "export_onnx", "exporter_errors", "graph_tensor_names",
           "names_missing_from", "optimize_keeping_initializers", "registry", "tensor_shapes"]


class ExportError(RuntimeError):
    """An export failed; the message names the step and the cause. No file was written."""


def optimize_keeping_initializers(proto: ModelProto) -> ModelProto:
    """The exporter's onnxscript optimization (constant folding, rewrites such as
    SplitToSequence -> Split, dead-code removal, constants lifted to initializers) without
    merging equal initializers or equal subexpressions, which would give two parameters (say two
    LayerNorm weights that are both ones) one name."""
    model = ir.serde.deserialize_model(proto)
    common.InlinePass()(model)
    for _ in range(2):
        optimizer.fold_constants_ir(model)
        rewriter.rewrite(model)
        optimizer.remove_unused_nodes(model)
    for optimization in (common.RemoveUnusedFunctionsPass(), common.RemoveUnusedOpsetsPass(),
                         common.LiftConstantsToInitializersPass(lift_all_constants=True,
                                                                size_limit=0),
                         common.NameFixPass()):
        optimization(model)
    return ir.serde.serialize_model(model)


@functools.lru_cache(maxsize=None)
def registry(opset: int) -> _registration.ONNXRegistry:
    """The exporter's op registry at ``opset`` (torchlib's ONNX functions of every ATen op) with
    :data:`QDQ_TRANSLATION_TABLE` registered, built once per opset and process.

    ``torch.onnx.export`` rebuilds it from torchlib on every call (about 0.3 s, as long as the
    whole FP32 export of a small CNN), and ``sim.export`` exports twice; exporting through
    ``torch.onnx``'s own ``_core.export`` with this registry is what ``torch.onnx.export(...,
    dynamo=True, custom_translation_table=...)`` does otherwise (torch 2.13, pinned in
    setup.py). Exports only read the registry.
    """
    registry = _registration.ONNXRegistry.from_torchlib(opset_version=opset)
    for torch_op, onnx_function in QDQ_TRANSLATION_TABLE.items():
        registry.register_op(torch_op, onnx_function, is_complex=False)
    return registry


# Logs one "torchvision is not installed" warning per torchvision op on every export.
_EXPORTER_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"


@contextlib.contextmanager
def exporter_errors(what: str):
    """Runs the exporter inside the block: its warnings and registry logs silenced, any error it
    raises turned into an :class:`ExportError` that starts with ``what`` (the error chained).
    """
    try:
        with warnings.catch_warnings(), _quiet(_EXPORTER_REGISTRY_LOGGER):
            warnings.simplefilter("ignore")
            yield
    except Exception as e:  # the exporter raises many types; all mean "could not export"
        summary = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ExportError(f"exporting {what} to ONNX failed: {type(e).__name__}: {summary}") from e


@contextlib.contextmanager
def _quiet(logger_name: str):
    """Raises the level of a logger to ERROR inside the block."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_onnx(model: nn.Module, dummy_input, what: str, *,
                keep_initializers: bool = False, opset: int = OPSET) -> ModelProto:
    """``model`` exported by ``torch.onnx.export(dynamo=True)`` at ``opset`` with the qsim op
    translations (:data:`QDQ_TRANSLATION_TABLE`), optimized by onnxscript (through
    ``_core.export`` with a cached op registry: :func:`registry`).

    Args:
        model: the model, in the mode it should be exported in.
        dummy_input: a tensor, a tuple or list of positional inputs, or a dict of keyword
            inputs.
        what: names the graph in error messages, e.g. ``"the QDQ graph"``.
        keep_initializers: optimize without merging equal initializers (every parameter keeps
            its own initializer and name).
        opset: the ONNX opset (21; 23 for graphs holding float4e2m1).

    Raises:
        ExportError: the exporter failed (e.g. the model cannot be traced); the message starts
            with ``what`` and gives the exporter's error, which is also chained as the cause.
    """
    args, kwargs = split_dummy_input(dummy_input)
    with exporter_errors(what):
        program = _core.export(model, args, kwargs, registry=registry(opset),
                               opset_version=opset, optimize=not keep_initializers,
                               verbose=False)
    proto = program.model_proto
    return optimize_keeping_initializers(proto) if keep_initializers else proto


def check_model(proto: ModelProto, what: str) -> None:
    """Runs the ONNX checker (with shape inference) on ``proto``.

    Raises:
        ExportError: the graph is invalid (a bug in the export: please report it).
    """
    try:
        checker.check_model(proto, full_check=True)
    except checker.ValidationError as e:
        raise ExportError(f"{what} is not a valid ONNX model: {e}") from e


def tensor_shapes(proto: ModelProto) -> dict:
    """``{name: shape}`` of every tensor of the main graph whose shape the exporter recorded
    (inputs, outputs, intermediate values, initializers); dimensions without a fixed size are
    None.

    Example::

        >>> tensor_shapes(export_onnx(torch.nn.Linear(2, 3), torch.randn(1, 2), "ex"))["linear"]
        (1, 3)
    """
    graph = proto.graph
    shapes = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                       for d in value.type.tensor_type.shape.dim)
    shapes.update({t.name: tuple(t.dims) for t in graph.initializer})
    return shapes


def graph_tensor_names(proto: ModelProto) -> set:
    """Every tensor name in the main graph: inputs, initializers and node outputs."""
    graph = proto.graph
    names = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(o for o in node.output if o)
    return names


def names_missing_from(proto: ModelProto, encodings: dict) -> list:
    """The names of an encodings dict (:mod:`torchqsim.encodings`) that ``proto`` lacks: those
    of activations (and of entries without a role) that are no tensor of the main graph, then
    those of params that are no initializer, in dict order.

    Example::

        >>> proto = export_onnx(torch.nn.Linear(2, 2), torch.randn(1, 2), "example")
        >>> names_missing_from(proto, {"activation_encodings": {"linear": {}, "relu": {}},
        ...                            "param_encodings": {"weight": {}, "linear": {}}})
        ['relu', 'linear']
    """
    known = graph_tensor_names(proto)
    initializers = {t.name for t in proto.graph.initializer}
    missing = [n for s in ("activation_encodings", "encodings") for n in encodings.get(s, {})
               if n not in known]
    return missing + [n for n in encodings.get("param_encodings", {}) if n not in initializers]
