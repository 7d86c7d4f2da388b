"""Which quantized modules onnxruntime runs as fused integer kernels (docs/runtime_target.md §1).

onnxruntime's QDQ selectors (CPU execution provider, default optimization level) fuse
``DQ -> op -> Q`` node groups into integer kernels. On the sim's module graph this module finds
the groups it replicates, each as a :class:`FusedGroup`:

- ``conv``: a ``Conv1d``/``Conv2d`` (zeros padding) -> ``QLinearConv``;
- ``gemm``: a ``Linear`` -> ``QGemm`` (a ``Gemm``, or ``MatMul`` + ``Add`` fused into one);
- ``add``: an ``Add`` of two quantized tensors -> ``QLinearAdd``;
- ``mul``: a ``Mul`` of two quantized tensors (any broadcast) -> ``QLinearMul``;
- ``matmul``: a ``MatMul`` of two uint8 activations (attention) -> ``QLinearMatMul``;
- ``softmax``: a ``Softmax`` of a uint8 activation -> ``QLinearSoftmax``;
- ``matmulnbits``: a ``Linear`` with an 8-bit weight (int8/uint8, per-tensor or per output
  channel) that is no ``gemm`` group (16-bit or float activations), applied to inputs of 3 or
  more dims (exported as ``MatMul`` [+ ``Add``]; a 2-D ``Gemm`` stays float) -> ``MatMulNBits``
  (8 bits, block size 32, int8 compute), whatever quantizes its input and output; likewise an
  ``AddMm`` (``MatMul`` + ``Add``, GPT-2's Conv1D) with no 8-bit activation.

Conditions (the selectors' checks, on the sim's quantizers): every input is read through a
DequantizeLinear, i.e. the module's own input quantizer or the output quantizer of its
producer, also across a ``MaxPool``, ``Flatten`` or ``Dropout`` without quantizers, across a no-op
``x * 1``, ``x + 0`` (onnxruntime's NoopElimination removes them) and across data movement (views, transposes, squeezes, slices, fp32 casts; not a Gather, Split, Expand or
Concat), as onnxruntime propagates the DQ; activations per-tensor on an 8-bit grid that fills
its ONNX type (uint8 ``[0, 255]`` or int8 ``[-128, 127]``), input and output of the same
signedness; weights
of 5 to 8 bits (an int8/uint8 initializer), per-tensor or symmetric per output channel. The
output is quantized by the module's own output quantizer, or (onnxruntime's redundant-ReLU
rule) by the output quantizer of a ``ReLU`` that is the only consumer, when that quantizer's
zero point is the lowest integer of its type. Anything else stays on the reference semantics,
as onnxruntime leaves such nodes in floating point.
"""

from dataclasses import dataclass

import torch
from torch import fx, nn

from ..graph.nodes import Producer
from ..nn.activation import QuantizedReLU, QuantizedSoftmax
from ..nn.conv import QuantizedConv1d, QuantizedConv2d
from ..nn.dropout import QuantizedDropout
from ..nn.elementwise import (QuantizedAdd, QuantizedAddMm, QuantizedDivide, QuantizedMatMul,
                              QuantizedMultiply, QuantizedSubtract)
from ..nn.linear import QuantizedLinear
from ..nn.pooling import QuantizedMaxPool1d, QuantizedMaxPool2d
from ..nn.shape import QuantizedFlatten
from ..quantization.quantizer import QuantizeDequantize
from .arithmetic import saturates_u8s8

__all__ = ["FusedGroup", "find_groups"]

_KINDS = {QuantizedConv1d: "conv", QuantizedConv2d: "conv", QuantizedLinear: "gemm",
          QuantizedAdd: "add", QuantizedMultiply: "mul", QuantizedMatMul: "matmul",
          QuantizedSoftmax: "softmax"}
_BINARY = ("add", "mul", "matmul")
#: Kernels onnxruntime's x86 CPU selectors fuse for uint8 activations only (int8 is allowed on
#: ARM alone): with int8 activations Add, Mul, MatMul of two activations and Softmax stay float.
_UINT8_ONLY = ("add", "mul", "matmul", "softmax")
_TRANSPARENT = (QuantizedMaxPool1d, QuantizedMaxPool2d, QuantizedFlatten, QuantizedDropout)
#: Data movement a DequantizeLinear crosses (onnxruntime's QDQ propagation: Reshape,
#: Transpose, Squeeze, Unsqueeze, Slice; torch's view methods export as those).
_MOVES = {"view", "reshape", "transpose", "permute", "contiguous", "flatten", "squeeze",
          "unsqueeze", "t"}


#: Tensor splits (an ONNX Split): their parts keep the values, which a float kernel after them
#: reads as the DequantizeLinear's (Phi-3's MLP chunks its gate and up projections).
_SPLITS = {"chunk", "split", "tensor_split", "unbind"}


def _name(node: fx.Node) -> str | None:
    """The method or function fx `node` calls (None for other nodes)."""
    if node.op == "call_method":
        return node.target
    if node.op == "call_function":
        return getattr(node.target, "__name__", "")
    return None


def _is_move(node: fx.Node, splits: bool = False) -> bool:
    """Whether fx `node` is data movement a DequantizeLinear crosses: a :data:`_MOVES` call, a
    cast to fp32 (``.to(torch.float32)``, ``.float()``, or ``.type_as(t)`` of an fp32 `t`, the
    capture's ``dtype`` meta, in an fp32 model: no node in the export, or a Cast that onnxruntime
    removes; Gemma's RMSNorm ends in one), or tensor indexing by slices only (an ONNX Slice; an
    integer index is a Gather, which stops it); with `splits`, also a :data:`_SPLITS` call and an
    integer index into its parts."""
    name = _name(node)
    if name == "to":
        return all(a is torch.float32 for a in (*node.args[1:], *node.kwargs.values()))
    if name == "float":
        return len(node.args) == 1 and not node.kwargs
    if name == "type_as":
        other = node.args[1] if len(node.args) == 2 else None
        return isinstance(other, fx.Node) and other.meta.get("dtype") is torch.float32
    if splits and (name in _SPLITS or name == "getitem" and isinstance(node.args[1], int)
                   and isinstance(node.args[0], fx.Node) and _name(node.args[0]) in _SPLITS):
        return True
    if name == "getitem":
        index = node.args[1] if len(node.args) > 1 else None
        index = index if isinstance(index, tuple) else (index,)
        return all(isinstance(i, slice) or i is Ellipsis for i in index)
    return name in _MOVES


_FULL_8BIT = ((0, 255), (-128, 127))
#: onnxruntime's NoopElimination (basic level, before the QDQ fusions) removes ``x + 0``,
#: ``0 + x``, ``x - 0``, ``x * 1``, ``1 * x`` and ``x / 1`` with a one-value constant (Whisper's
#: attention scales its scores by 1.0): the identity value, and whether it may come first.
_NOOPS = {QuantizedAdd: (0, True), QuantizedSubtract: (0, False), QuantizedMultiply: (1, True),
          QuantizedDivide: (1, False)}


@dataclass
class FusedGroup:
    """One fused node group: `kind` (``conv``, ``gemm``, ``add``, ...), the quantizers of its
    DequantizeLinear inputs (`inputs`, one per tensor input, the weight's last; a
    ``matmulnbits`` group's activation entry is None when no DequantizeLinear feeds it), the
    quantizer of its QuantizeLinear output (`output`; None for a ``matmulnbits`` group without
    one), whether that quantizer sits
    on the ReLU after the module (`through_relu`) and whether the kernel saturates pairs of
    uint8 x int8 products in int16 (`saturates`: signed weights on a CPU without VNNI)."""

    kind: str
    inputs: list
    output: QuantizeDequantize | None
    through_relu: bool
    saturates: bool = False


def _is_int(q) -> bool:
    return isinstance(q, QuantizeDequantize) and q.block_size is None


def _activation_ok(q) -> bool:
    return _is_int(q) and q.shape == () and (q.qmin, q.qmax) in _FULL_8BIT


def _weight_ok(q, module: nn.Module, axis: int = 0) -> bool:
    """An integer weight quantizer of 5 to 8 bits, per-tensor or symmetric per output channel
    (on `axis` of the weight: 0, or 1 for an ``AddMm``'s ``(in, out)`` weight)."""
    if not (_is_int(q) and q.qmin >= -128 and q.qmax <= 255 and q.qmax - q.qmin > 15):
        return False
    if q.shape == ():
        return True
    channels = module.weight.shape[axis]
    return q.symmetric and len(q.shape) > axis and q.shape[axis] == channels and all(
        n == 1 for i, n in enumerate(q.shape) if i != axis)


def _moves_only(node, target, splits: bool = False) -> bool:
    """Whether the fx path from `node` back to `target` (an fx node) is data movement only
    (:func:`_is_move`; not a Gather, Expand or Concat, nor a Split unless `splits`)."""
    while node is not target:
        if not isinstance(node, fx.Node) or not node.args or not _is_move(node, splits):
            return False
        node = node.args[0]
    return True


def _passes_dq(op) -> int | None:
    """The input of `op` (an op without output quantizer) whose DequantizeLinear reaches its
    consumers: 0 for a :data:`_TRANSPARENT` module, the tensor input of a no-op that
    onnxruntime removes (:data:`_NOOPS`: a Python number as the other operand, the output no
    model output); None when `op` stops it."""
    module = op.module
    if any(q is not None for q in module.input_quantizers):
        return None
    if isinstance(module, _TRANSPARENT):
        return 0
    noop = _NOOPS.get(type(module))
    if noop is None or op.is_model_output[0] or len(op.node.args) != 2 or op.node.kwargs:
        return None
    for index in (0, 1):
        const = op.node.args[1 - index]
        if (op.tensor_inputs[index] and type(const) in (int, float) and const == noop[0]
                and (index == 0 or noop[1])):
            return index
    return None


def _source_quantizer(op, index: int, splits: bool = False):
    """The quantizer whose DequantizeLinear feeds input `index` of `op`, or None; `splits`: also
    through a Split (a float kernel's input; no QDQ fusion crosses one)."""
    own = op.module.input_quantizers
    if index < len(own) and own[index] is not None:
        return own[index]
    source = op.inputs[index] if index < len(op.inputs) else None
    node = op.node.args[index] if index < len(op.node.args) else None
    while isinstance(source, Producer):
        if not _moves_only(node, source.op.node, splits):
            return None
        module, out = source.op.module, source.output_index
        q = module.output_quantizers[out] if out < len(module.output_quantizers) else None
        if q is not None:
            return q
        through = _passes_dq(source.op)
        if through is None:
            return None
        source, node = source.op.inputs[through], source.op.node.args[through]
    return None


def _output_quantizer(op, grid_ok=_activation_ok):
    """``(quantizer, through_relu)`` of the QuantizeLinear after `op`, or ``(None, False)``; a
    ReLU's quantizer must satisfy `grid_ok` (by default a full 8-bit grid)."""
    if op.module.output_quantizers[0] is not None:
        return op.module.output_quantizers[0], False
    consumers = op.consumers[0] if op.consumers else []
    if len(consumers) != 1 or op.is_model_output[0]:
        return None, False
    relu = consumers[0][0].module
    if type(relu) is not QuantizedReLU or relu.input_quantizers[0] is not None:
        return None, False
    q = relu.output_quantizers[0]
    if q is None or not grid_ok(q) or float(q.get_zero_point()) != q.qmin:
        return None, False
    return q, True


def _nbits_group(op, rank: int, axis: int = 0,
                 tied: frozenset = frozenset()) -> FusedGroup | None:
    """The ``matmulnbits`` group of a Linear that is no ``gemm`` group (or of an ``AddMm``,
    weight channels on `axis` 1), or None: an input of `rank` 3 or more (a 2-D Linear exports as
    a Gemm, which onnxruntime runs in float; ``addmm`` exports as MatMul + Add), its weight
    quantizer on a full 8-bit grid (per-tensor, or symmetric per output channel) and no bias
    quantizer (onnxruntime quantizes the float bias to int32 when a DequantizeLinear feeds the
    input, as for QGemm). A weight in `tied` (ids of parameters another op shares: a tied
    ``lm_head``) reaches its MatMul through a Transpose node: onnxruntime rewrites that into
    MatMulNBits for a per-channel DequantizeLinear only; per-tensor, it stays a float MatMul
    (measured on GPT-2 and Gemma)."""
    weight = op.module.param_quantizers["weight"]
    if rank < 3 or weight is None or not _weight_ok(weight, op.module, axis) or \
            (weight.qmin, weight.qmax) not in _FULL_8BIT:
        return None
    if weight.shape == () and id(op.module.weight) in tied:
        return None
    quantizers = op.module.param_quantizers
    if "bias" in quantizers and quantizers["bias"] is not None:
        return None
    source = _source_quantizer(op, 0)
    output = op.module.output_quantizers[0]
    return FusedGroup("matmulnbits", [source if _is_int(source) else None, weight],
                      output, False)


def _addmm_group(op) -> FusedGroup | None:
    """An ``AddMm`` (GPT-2's Conv1D: ``MatMul`` + ``Add`` of an ``(in, out)`` weight) with no
    activation on a full 8-bit grid: onnxruntime rewrites it into MatMulNBits like a 3-D Linear.
    With 8-bit activations onnxruntime fuses it into QGemm, which is not replicated for it (the
    reference)."""
    source, output = _source_quantizer(op, 0), op.module.output_quantizers[0]
    if _activation_ok(source) or _activation_ok(output):
        return None
    group = _nbits_group(op, 3, axis=1)
    if group is not None and output is None:  # a ReLU onnxruntime removes before its Q: the
        group.output, group.through_relu = _output_quantizer(op, _is_int)  # bias goes int32
    return group


def _tied_weights(graph) -> frozenset:
    """The ids of the weight parameters that more than one op's module holds (tied embeddings)."""
    seen, tied = set(), set()
    for op in graph.ops:
        weight = getattr(op.module, "weight", None)
        if isinstance(weight, torch.nn.Parameter):
            (tied if id(weight) in seen else seen).add(id(weight))
    return frozenset(tied)


def _group(op, saturates: bool, rank: int, tied: frozenset) -> FusedGroup | None:
    if type(op.module) is QuantizedAddMm:
        return _addmm_group(op)
    kind = _KINDS.get(type(op.module))
    if kind is None or getattr(op.module, "padding_mode", "zeros") != "zeros":
        return None
    group = _fused_group(op, kind, saturates)
    if group is not None or kind != "gemm" or _float_gemm(op):
        return group
    return _nbits_group(op, rank, tied=tied)


def _float_gemm(op) -> bool:
    """A Linear with a bias and an 8-bit output quantizer whose input no DequantizeLinear feeds:
    onnxruntime's MatMulAddFusion makes its MatMul + Add a float Gemm, no MatMulNBits (measured
    on Swin, whose window padding sits between its norm's DequantizeLinear and q/k/v: at W8A8 a
    float Gemm, at W8A16 MatMulNBits)."""
    return getattr(op.module, "bias", None) is not None and \
        _activation_ok(op.module.output_quantizers[0]) and \
        not _is_int(_source_quantizer(op, 0))


def _fused_group(op, kind: str, saturates: bool) -> FusedGroup | None:
    count = 2 if kind in _BINARY else 1
    if kind in _BINARY and sum(op.tensor_inputs[:2]) != 2:
        return None
    inputs = [_source_quantizer(op, i) for i in range(count)]
    output, through_relu = _output_quantizer(op)
    if output is None or not _activation_ok(output) or not all(
            q is not None and _activation_ok(q) and (q.qmin < 0) == (output.qmin < 0)
            for q in inputs):
        return None
    if kind in _UINT8_ONLY and output.qmin < 0:
        return None
    if kind == "softmax" and getattr(op.module, "dim", None) is None:
        return None
    if kind in ("conv", "gemm"):
        weight = op.module.param_quantizers["weight"]
        if weight is None or not _weight_ok(weight, op.module):
            return None
        bias = op.module.param_quantizers["bias"] if "bias" in op.module.param_quantizers \
            else None
        if bias is not None:  # a quantized bias is no int32 DequantizeLinear: not fused
            return None
        inputs.append(weight)
        return FusedGroup(kind, inputs, output, through_relu, weight.qmin < 0 and saturates)
    return FusedGroup(kind, inputs, output, through_relu)


def find_groups(graph, saturation: bool | None = None,
                input_ranks: dict | None = None) -> dict[str, FusedGroup]:
    """Module path -> :class:`FusedGroup` for every op of `graph` (a
    :class:`~torchqsim.graph.ModuleGraph` of the sim) that onnxruntime fuses; `saturation`:
    whether the CPU's u8 x s8 kernels saturate pairs (None: this CPU's); `input_ranks`: module
    path -> rank of its input (``sim._input_ranks``; a module missing there counts as 3-D)."""
    found = {}
    saturates = saturates_u8s8() if saturation is None else saturation
    tied = _tied_weights(graph)
    for op in graph.ops:
        group = _group(op, saturates, (input_ranks or {}).get(op.name, 3), tied)
        if group is not None:
            found[op.name] = group
    return found
