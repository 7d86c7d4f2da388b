"""onnxruntime's float kernels in the target mode (docs/runtime_target.md §2).

Between a DequantizeLinear and a QuantizeLinear that onnxruntime does not fuse (every 16-bit
activation; LayerNorm, GELU and SiLU at any bit width) its CPU execution provider runs float kernels
whose fp32 arithmetic differs from torch's by a rounding now and then, which moves a point of
a fine (16-bit) output grid. In the target mode these modules compute onnxruntime's kernels bit
for bit (:mod:`.native`, kernels/include/qsim/ortfloat.h):

- ``layer_norm``: a ``LayerNorm`` whose input a DequantizeLinear feeds (its own input quantizer,
  or the output quantizer of its producer; a float producer such as an ``Add`` may be fused with
  it into onnxruntime's SkipLayerNormalization);
- ``gelu``, ``gelu_tanh``: a ``GELU`` (``approximate="none"`` or ``"tanh"``) whose input a
  DequantizeLinear feeds (a float ``Add`` before it may become BiasGelu);
- ``softmax``: a ``Softmax`` that is no ``softmax`` group (QLinearSoftmax, :mod:`.groups`);
- ``silu``: a ``SiLU`` whose input a DequantizeLinear feeds (exported as Sigmoid then Mul);
- ``matmul``: a ``MatMul`` of two tensors that is no ``matmul`` group (QLinearMatMul), neither
  produced by a Mul or Div without output quantizer (onnxruntime may fold such a scaling into
  FusedMatMul's alpha), where MLAS's SGEMM arithmetic applies (:func:`.native.matmul`);
- ``sigmoid``, ``tanh``: a ``Sigmoid`` or ``Tanh`` whose output its own quantizer quantizes, not
  on a full 8-bit grid (a QuantizeLinear after it keeps it out of onnxruntime's QuickGelu and
  FastGelu fusions; on an 8-bit grid onnxruntime may run a QLinear lookup table instead);
- ``reduce_mean``: an ``AdaptiveAvgPool1d/2d`` to size 1 or a ``mean`` (exported as ReduceMean,
  which no QDQ fusion takes) whose input a DequantizeLinear feeds (then a Transpose before it
  stays there: :mod:`.reduction`), where :func:`.reduction.mean` replicates its loop;
- ``sqrt``: a ``sqrt`` (onnxruntime's Sqrt is the correctly rounded one, as IEEE 754 requires;
  torch's fp32 ``sqrt`` on this CPU is not, on about 15 % of values: :func:`sqrt`);
- ``batch_norm``: a ``BatchNorm1d/2d`` with running statistics that onnxruntime cannot fold
  into its producer (no Conv or Linear with a float weight before it: a DequantizeLinear's
  weight is no constant), run as onnxruntime's BatchNormalization kernel
  (:func:`batch_norm`).

Each runs on fp32 CPU tensors in eval mode without autograd; otherwise (training, grad enabled,
another dtype or device) the module computes the reference, as it does in reference mode.

Example::

    >>> find_float_ops(sim.graph, groups)    # doctest: +SKIP
    {'embeddings.LayerNorm': 'layer_norm', 'module_softmax': 'softmax', 'module_gelu': 'gelu'}
"""


import torch

from . import native, reduction
from .groups import _activation_ok, _is_int, _source_quantizer
from ..graph.nodes import Producer
from ..nn.activation import (QuantizedGELU, QuantizedSigmoid, QuantizedSiLU, QuantizedSoftmax,
                             QuantizedTanh)
from ..nn.elementwise import (QuantizedDivide, QuantizedMatMul, QuantizedMean, QuantizedMultiply,
                              QuantizedSqrt)
from ..nn.normalization import QuantizedBatchNorm1d, QuantizedBatchNorm2d, QuantizedLayerNorm
from ..nn.pooling import QuantizedAdaptiveAvgPool1d, QuantizedAdaptiveAvgPool2d

__all__ = ["find_float_ops", "float_forward", "batch_norm", "sqrt"]

_KINDS = {QuantizedLayerNorm: "layer_norm", QuantizedGELU: "gelu", QuantizedSoftmax: "softmax",
          QuantizedSiLU: "silu", QuantizedSigmoid: "sigmoid", QuantizedTanh: "tanh",
          QuantizedMatMul: "matmul", QuantizedBatchNorm1d: "batch_norm",
          QuantizedBatchNorm2d: "batch_norm", QuantizedMean: "reduce_mean",
          QuantizedAdaptiveAvgPool1d: "reduce_mean", QuantizedAdaptiveAvgPool2d: "reduce_mean",
          QuantizedSqrt: "sqrt"}


def _kind(op, groups: dict) -> str | None:
    kind = _KINDS.get(type(op.module))
    if kind is None or op.name in groups:
        return None
    if kind == "softmax":
        return kind if getattr(op.module, "dim", None) is not None else None
    if kind == "gelu" and op.module.approximate == "tanh":
        kind = "gelu_tanh"
    if kind in ("sigmoid", "tanh"):  # its Q keeps it out of fusions; QLinear* take 8-bit grids
        q = op.module.output_quantizers[0]
        return kind if q is not None and not _activation_ok(q) else None
    if kind == "matmul":
        return kind if sum(op.tensor_inputs[:2]) == 2 and not any(
            _unquantized_scaling(op, i) for i in (0, 1)) else None
    if kind == "batch_norm":
        return kind if op.module.running_mean is not None and not _foldable(op) else None
    if kind == "sqrt":  # no fusion takes a Sqrt: its input is the float value either way
        return kind
    if kind == "reduce_mean":  # a pool to size 1 (any other size: AveragePool)
        size = getattr(op.module, "output_size", 1)
        if set(size if isinstance(size, (tuple, list)) else (size,)) != {1}:
            return None
    return kind if _source_quantizer(op, 0, splits=True) is not None else None


def _unquantized_scaling(op, index: int) -> bool:
    """Whether input `index` of `op` comes from a Mul or Div without output quantizer, which
    onnxruntime may fold into FusedMatMul's alpha (another rounding order)."""
    source = op.inputs[index] if index < len(op.inputs) else None
    if not isinstance(source, Producer) or op.module.input_quantizers[index] is not None:
        return False
    module = source.op.module
    return isinstance(module, (QuantizedMultiply, QuantizedDivide)) and \
        module.output_quantizers[source.output_index] is None


def _foldable(op) -> bool:
    """Whether onnxruntime may fold the BatchNorm `op` into its producer: a module whose weight
    is a float initializer (no integer weight quantizer), with no QuantizeLinear between."""
    source = op.inputs[0] if op.inputs else None
    if not isinstance(source, Producer) or op.module.input_quantizers[0] is not None:
        return False
    producer = source.op.module
    if producer.output_quantizers[source.output_index] is not None or \
            not isinstance(getattr(producer, "weight", None), torch.Tensor):
        return False
    return not _is_int(producer.param_quantizers._modules.get("weight"))


def sqrt(x):
    """The correctly rounded fp32 square root of `x` (onnxruntime's Sqrt), through fp64: the fp64
    root of an fp32 value rounds to the correctly rounded fp32 one.

    Example::

        >>> sqrt(torch.tensor([4.0, 2.0]))
        tensor([2.0000, 1.4142])
    """
    return torch.sqrt(x.double()).float()


def batch_norm(x, mean, var, weight, bias, eps: float):
    """onnxruntime's CPU BatchNormalization in inference: per channel (axis 1) a scale
    ``weight / sqrt(var + eps)`` (the reciprocal of the square root, then the product) and a bias
    ``bias - mean * scale``, then ``x * scale + bias``, each operation rounded to fp32 (no FMA;
    torch's batch_norm rounds otherwise). The square root and the reciprocal are the correctly
    rounded ones, computed in fp64 (torch's fp32 ``sqrt`` on CPU is not always correctly
    rounded; fp64 then fp32 is, for both). `weight`/`bias` None mean ones/zeros.

    Example::

        >>> batch_norm(torch.ones(1, 2), torch.zeros(2), torch.full((2,), 3.0), None, None, 1.0)
        tensor([[0.5000, 0.5000]])
    """
    root = sqrt(var + torch.tensor(eps, dtype=torch.float32))
    inv_std = (1.0 / root.double()).float()
    scale = inv_std if weight is None else inv_std * weight
    shift = -(mean * scale) if bias is None else bias - mean * scale
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return x * scale.reshape(shape) + shift.reshape(shape)


def find_float_ops(graph, groups: dict) -> dict[str, str]:
    """Module path -> kind (``layer_norm``, ``gelu``, ``gelu_tanh``, ``softmax``, ``silu``,
    ``sigmoid``, ``tanh``, ``matmul``, ``batch_norm``, ``reduce_mean``, ``sqrt``) of every op of `graph`
    (the sim's :class:`~torchqsim.graph.ModuleGraph`) that onnxruntime runs as one of its float kernels, given the fused `groups`
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
    if kind == "gelu_tanh":
        return native.gelu_tanh(x)
    if kind in native.ACTIVATIONS:
        return native.activation(x, kind)
    if kind == "reduce_mean":
        if isinstance(module, QuantizedMean):
            return reduction.mean(x, module.dim, module.keepdim)
        pooled = (-1,) if isinstance(module, QuantizedAdaptiveAvgPool1d) else (-2, -1)
        return reduction.mean(x, pooled, True)
    if kind == "sqrt":
        return sqrt(x)
    if kind == "batch_norm":
        return batch_norm(x, module.running_mean, module.running_var,
                          module.quantized_param("weight"), module.quantized_param("bias"),
                          module.eps)
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
