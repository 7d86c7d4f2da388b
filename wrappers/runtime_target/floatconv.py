"""onnxruntime's float Conv and Gemm in the target mode (docs/runtime_target.md §2).

A ``Conv1d``/``Conv2d`` or ``Linear`` that onnxruntime does not fuse into an integer kernel (16-bit
activations: its CPU selectors refuse them) runs as a float Conv or Gemm between a
DequantizeLinear and a QuantizeLinear, with MLAS's fp32 summation order: K in blocks, each
block's products summed from zero by FMA in K order, the blocks added to the output; a Gemm's
bias first, a Conv's bias after (kernels/include/qsim/ortconv.h). torch sums in another order,
a rounding apart now and then, which moves a point of a 16-bit output grid. In the target mode
these modules compute MLAS's order bit for bit (``qsim::ort_conv2d``, ``qsim::ort_gemm``):

- ``conv``: a ``Conv1d``/``Conv2d`` with zeros padding given as numbers, whose output is
  quantized or goes to a single ``ReLU`` (FusedConv: the same values) or to a single BatchNorm
  with running statistics (onnxruntime's BatchNormalization after the Conv); one output channel
  per group (depthwise) runs MLAS's M = 1 kernel, replicated too, except where MLAS multiplies by
  the transposed input (one input channel per group, stride 1, no padding, the kernel as wide
  as the input, or as high with width 1: the reference);
- ``gemm``: a ``Linear`` with the same output condition, on a 2-D input (exported as a Gemm;
  one row runs MLAS's M = 1 kernel, replicated too; 3-D inputs export as MatMul + Add).

Either needs an integer weight quantizer (the weight then comes from a DequantizeLinear: a
float initializer would be prepacked, or rewritten to the NCHWc layout, by onnxruntime) and is
no fused group. When a DequantizeLinear feeds the input and a QuantizeLinear reads the output
(the module's own, or a ReLU's that onnxruntime removes), onnxruntime's weight/bias
quantization pass replaces a float bias by an int32 one, ``Round(bias / (x_scale * w_scale))``
times that product scale (:func:`.arithmetic.quantized_bias`), which the module then adds
(measured: the CNN's Convs and Gemm at W8A16). Each runs on fp32 CPU tensors in eval mode
without autograd, with calibrated quantizers; otherwise the module computes the reference, as
it does in reference mode.

Example::

    >>> find_float_convs(sim.graph, groups)    # doctest: +SKIP
    {'stem.0': ('conv', <input quantizer>), 'fc': ('gemm', <pool's output quantizer>)}
"""

import torch

from . import arithmetic as ar
from .floatops import _plain
from .groups import _is_int, _output_quantizer, _source_quantizer
from ..nn.activation import QuantizedReLU
from ..nn.conv import QuantizedConv1d, QuantizedConv2d
from ..nn.linear import QuantizedLinear
from ..nn.normalization import QuantizedBatchNorm1d, QuantizedBatchNorm2d

__all__ = ["find_float_convs", "float_conv_forward", "conv", "gemm", "has_kernels"]


def has_kernels() -> bool:
    """Whether torchqsim._C has the kernels (a binary built before them has not)."""
    return hasattr(torch.ops.qsim, "ort_conv2d")


def conv(x, weight, bias, stride, padding, dilation, groups):
    """onnxruntime's float Conv (1-D or 2-D, zeros padding) of fp32 CPU `x`, bit for bit
    (``qsim::ort_conv2d``; a 1-D Conv is promoted to 2-D, as MLAS does).

    Example::

        >>> conv(torch.ones(1, 1, 3), torch.ones(2, 1, 2), None, (1,), (0,), (1,), 1)
        tensor([[[2., 2.],
                 [2., 2.]]])
    """
    if x.dim() == 3:
        y = torch.ops.qsim.ort_conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias,
                                      [1, *stride], [0, *padding], [1, *dilation], groups)
        return y.squeeze(2)
    return torch.ops.qsim.ort_conv2d(x, weight, bias, list(stride), list(padding),
                                     list(dilation), groups)


def gemm(x, weight, bias):
    """onnxruntime's float Gemm ``x @ weight.T + bias`` of fp32 CPU 2-D `x`, bit for bit
    (``qsim::ort_gemm``).

    Example::

        >>> gemm(torch.ones(2, 3), torch.ones(1, 3), torch.tensor([0.5]))
        tensor([[3.5000],
                [3.5000]])
    """
    return torch.ops.qsim.ort_gemm(x, weight, bias)


def _output_ok(op) -> bool:
    """Whether the output of `op` goes to a QuantizeLinear, a single ReLU or a single unfolded
    BatchNorm (onnxruntime's BatchNormalization kernel, :func:`.floatops.batch_norm`), never
    fused with an Add or another op into a different float kernel."""
    if op.module.output_quantizers[0] is not None:
        return True
    consumers = op.consumers[0] if op.consumers else []
    if len(consumers) != 1 or op.is_model_output[0]:
        return False
    consumer = consumers[0][0].module
    return type(consumer) is QuantizedReLU or (
        isinstance(consumer, (QuantizedBatchNorm1d, QuantizedBatchNorm2d))
        and consumer.input_quantizers[0] is None and consumer.running_mean is not None)


def _kind(op, groups: dict) -> str | None:
    module = op.module
    if not isinstance(module, (QuantizedLinear, QuantizedConv1d, QuantizedConv2d)):
        return None
    if op.name in groups or not _is_int(module.param_quantizers["weight"]) or not _output_ok(op):
        return None
    if isinstance(module, QuantizedLinear):
        return "gemm"
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        return None
    return "conv"


def _bias_source(op):
    """The quantizer whose scale onnxruntime's bias quantization multiplies with the weight's,
    or None when the float bias stays (no bias, a quantized bias, no DQ before or Q after)."""
    module = op.module
    if module.bias is None or module.param_quantizers._modules.get("bias") is not None:
        return None
    source = _source_quantizer(op, 0)
    if not _is_int(source) or _output_quantizer(op, grid_ok=_is_int)[0] is None:
        return None
    return source


def find_float_convs(graph, groups: dict) -> dict[str, tuple]:
    """Module path -> ``(kind, bias_source)`` of every op of `graph` (the sim's
    :class:`~torchqsim.graph.ModuleGraph`) that onnxruntime runs as a float Conv or Gemm, given
    the fused `groups` (:func:`.groups.find_groups`): kind ``conv`` or ``gemm``, bias_source the
    input's quantizer when onnxruntime quantizes the bias to int32 (else None); empty when
    torchqsim._C predates the kernels."""
    if not has_kernels():
        return {}
    found = {}
    for op in graph.ops:
        kind = _kind(op, groups)
        if kind is not None:
            found[op.name] = (kind, _bias_source(op))
    return found


def _bias(module, bias_source):
    """The bias onnxruntime adds: the module's, or its int32 quantization (fp32 products)."""
    bias = module.quantized_param("bias")
    if bias_source is None:
        return bias
    with torch.no_grad():
        x_scale = bias_source._scale_zero_point()[0]
        w_scale = module.param_quantizers["weight"]._scale_zero_point()[0].reshape(-1)
    return ar.quantized_bias(bias, x_scale, w_scale) * (x_scale * w_scale)


def _ready(module, bias_source) -> bool:
    quantizers = [q for q in (*module.input_quantizers, *module.output_quantizers, bias_source)
                  if q is not None]
    return all(not q._calibrating and q.is_initialized() for q in quantizers)


def _transposed_direct(module, x) -> bool:
    """Whether MLAS runs this Conv as a GEMM of the transposed input with one output channel per
    group (its M = 1 kernel on transposed B, not replicated)."""
    size, kernel = (1, *x.shape[2:])[-2:], (1, *module.kernel_size)[-2:]
    return (module.out_channels == module.groups and module.in_channels == module.groups
            and all(s == 1 for s in module.stride) and all(p == 0 for p in module.padding)
            and all(d == 1 for d in module.dilation)
            and (kernel[1] == size[1] or (kernel[0] == size[0] and kernel[1] == 1)))


def _compute(module, kind: str, bias_source, x):
    """MLAS's result for `x`, or None where onnxruntime runs another op (a MatMul + Add)."""
    if kind == "gemm" and x.dim() != 2:
        return None
    if kind == "conv" and _transposed_direct(module, x):
        return None
    weight = module.quantized_param("weight")
    bias = _bias(module, bias_source) if module.bias is not None else None
    if kind == "gemm":
        return gemm(x, weight, bias)
    return conv(x, weight, bias, module.stride, module.padding, module.dilation, module.groups)


def float_conv_forward(module, spec: tuple, *args, **kwargs):
    """The target-mode forward of a float Conv/Gemm module (installed by ``set_target``;
    `spec`: ``(kind, bias_source)`` of :func:`find_float_convs`): MLAS's arithmetic in no-grad
    eval on a plain fp32 CPU tensor with calibrated quantizers, else the module's own."""
    kind, bias_source = spec
    if (module.training or torch.is_grad_enabled() or len(args) != 1 or kwargs
            or not _ready(module, bias_source)):
        return type(module).forward(module, *args, **kwargs)
    x = module.quantize_inputs(args)[0]
    y = None
    if _plain(x):
        y = _compute(module, kind, bias_source, x)
    return module.quantize_outputs(module.quantized_forward(x) if y is None else y)
