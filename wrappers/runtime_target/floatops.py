"""onnxruntime's float kernels in the target mode (docs/runtime_target.md §2).

Between a DequantizeLinear and a QuantizeLinear that onnxruntime does not fuse (every 16-bit
activation; LayerNorm, GELU and SiLU at any bit width) its CPU execution provider runs float kernels
whose fp32 arithmetic differs from torch's by a rounding now and then, which moves a point of
a fine (16-bit) output grid. In the target mode these modules compute onnxruntime's kernels bit
for bit (:mod:`.native`, kernels/include/qsim/ortfloat.h):

- ``layer_norm``: a ``LayerNorm`` whose input a DequantizeLinear feeds (its own input quantizer,
  or the output quantizer of its producer; a float producer such as an ``Add`` may be fused with
  it into onnxruntime's SkipLayerNormalization);
- ``gelu``: a ``GELU`` with ``approximate="none"`` whose input a DequantizeLinear feeds (a float
  ``Add`` before it may become BiasGelu);
- ``softmax``: a ``Softmax`` that is no ``softmax`` group (QLinearSoftmax, :mod:`.groups`);
- ``silu``: a ``SiLU`` whose input a DequantizeLinear feeds (exported as Sigmoid then Mul);
- ``matmul``: a ``MatMul`` of two tensors that is no ``matmul`` group (QLinearMatMul), neither
  produced by a Mul or Div without output quantizer (onnxruntime may fold such a scaling into
  FusedMatMul's alpha), where MLAS's SGEMM arithmetic applies (:func:`.native.matmul`);
- ``sigmoid``, ``tanh``: a ``Sigmoid`` or ``Tanh`` whose output its own quantizer quantizes, not
  on a full 8-bit grid (a QuantizeLinear after it keeps it out of onnxruntime's QuickGelu and
  FastGelu fusions; on an 8-bit grid onnxruntime may run a QLinear lookup table instead).

Each runs on fp32 CPU tensors in eval mode without autograd; otherwise (training, grad enabled,
another dtype or device) the module computes the reference, as it does in reference mode.

Example::

    >>> find_float_ops(sim.graph, groups)    # doctest: +SKIP
    {'embeddings.LayerNorm': 'layer_norm', 'module_softmax': 'softmax', 'module_gelu': 'gelu'}
"""


import torch

from . import native
from .groups import _activation_ok, _source_quantizer
from ..graph.nodes import Producer
from ..nn.activation import (QuantizedGELU, QuantizedSigmoid, QuantizedSiLU, QuantizedSoftmax,
                             QuantizedTanh)
from ..nn.elementwise import QuantizedDivide, QuantizedMatMul, QuantizedMultiply
from ..nn.normalization import QuantizedLayerNorm

__all__ = ["find_float_ops", "float_forward"]

_KINDS = {QuantizedLayerNorm: "layer_norm", QuantizedGELU: "gelu", QuantizedSoftmax: "softmax",
          QuantizedSiLU: "silu", QuantizedSigmoid: "sigmoid", QuantizedTanh: "tanh",
          QuantizedMatMul: "matmul"}


def _kind(op, groups: dict) -> str | None:
    kind = _KINDS.get(type(op.module))
    if kind is None or op.name in groups:
        return None
    if kind == "softmax":
        return kind if getattr(op.module, "dim", None) is not None else None
    if kind == "gelu" and op.module.approximate != "none":
        return None
    if kind in ("sigmoid", "tanh"):  # its Q keeps it out of fusions; QLinear* take 8-bit grids
        q = op.module.output_quantizers[0]
        return kind if q is not None and not _activation_ok(q) else None
    if kind == "matmul":
        return kind if sum(op.tensor_inputs[:2]) == 2 and not any(
            _unquantized_scaling(op, i) for i in (0, 1)) else None
    return kind if _source_quantizer(op, 0) is not None else None


def _unquantized_scaling(op, index: int) -> bool:
    """Whether input `index` of `op` comes from a Mul or Div without output quantizer, which
    onnxruntime may fold into FusedMatMul's alpha (another rounding order)."""
    source = op.inputs[index] if index < len(op.inputs) else None
    if not isinstance(source, Producer) or op.module.input_quantizers[index] is not None:
        return False
    module = source.op.module
    return isinstance(module, (QuantizedMultiply, QuantizedDivide)) and \
        module.output_quantizers[source.output_index] is None


def find_float_ops(graph, groups: dict) -> dict[str, str]:
    """Module path -> kind (``layer_norm``, ``gelu``, ``softmax``, ``silu``, ``sigmoid``,
    ``tanh``, ``matmul``) of every op of `graph` (the sim's :class:`~torchqsim.graph.ModuleGraph`) that
    onnxruntime runs as one of its float kernels, given the fused `groups`
    (:func:`.groups.find_groups`); empty when torchqsim._C predates the kernels."""
    if not native.has_float_kernels():
        return {}
    found = {}
    for op in graph.ops:
        kind = _kind(op, groups)
        if kind is not None:
            found[op.name] = kind
    return found


def _compute(module, kind: str, x):
    if kind == "softmax":
        return native.softmax(x, module.dim)
    if kind == "gelu":
        return native.gelu(x)
    if kind in native.ACTIVATIONS:
        return native.activation(x, kind)
    weight = module.quantized_param("weight") if module.weight is not None else None
    bias = module.quantized_param("bias") if module.bias is not None else None
    return native.layer_norm(x, tuple(module.normalized_shape), weight, bias, module.eps)


def _plain(x) -> bool:
    return isinstance(x, torch.Tensor) and x.dtype == torch.float32 and \
        x.device.type == "cpu" and x.numel() > 0


def float_forward(module, kind: str, *args, **kwargs):
    """The target-mode forward of a float op's module (installed by ``set_target``): onnxruntime's
    float kernel `kind` in no-grad eval on plain fp32 CPU tensors, else the module's own."""
    arity = 2 if kind == "matmul" else 1
    if module.training or torch.is_grad_enabled() or len(args) != arity or kwargs:
        return type(module).forward(module, *args, **kwargs)
    args = module.quantize_inputs(args)
    y = None
    if all(_plain(x) for x in args):
        y = native.matmul(*args) if kind == "matmul" else _compute(module, kind, args[0])
    return module.quantize_outputs(module.quantized_forward(*args) if y is None else y)
