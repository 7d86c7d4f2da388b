"""Pure-torch oracle for the quantized wrappers of `torchqsim.nn`.

`reference_call(module, wrapper, args, kwargs)` runs the *torch* module (never the wrapper's
forward) with ``torch.func.functional_call`` on quantize-dequantized parameters and inputs, and
quantize-dequantizes its outputs, all with `reference.quantize_dequantize` (pure torch) and
the straight-through gradient, using the wrapper's quantizers' scale and zero point.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.nn import QuantizedLinear
    >>> m = nn.Linear(2, 2)
    >>> w = QuantizedLinear.from_module(m)
    >>> torch.equal(reference_call(m, w, (torch.ones(1, 2),)), w(torch.ones(1, 2)))
    True
"""

import torch
from torch import Tensor

import reference as ref
from torchqsim.quantization import QuantizeDequantize


def quantizer(lo: float, hi: float, shape=(), bitwidth: int = 8, symmetric: bool = False):
    """A QuantizeDequantize with its encoding set from the range [lo, hi]."""
    q = QuantizeDequantize(shape, bitwidth, symmetric)
    q.set_range(lo, hi)
    return q


def narrow_quantizer(x: Tensor, shape=(), bitwidth: int = 8) -> QuantizeDequantize:
    """Per-tensor (or per-channel of `shape`) quantizer whose range clips the ends of `x`."""
    x = x.detach().float()
    full = (1,) * (x.dim() - len(shape)) + tuple(shape)
    dims = [d for d, n in enumerate(full) if n == 1]
    lo = x.amin(dims, keepdim=True).reshape(shape)
    hi = x.amax(dims, keepdim=True).reshape(shape)
    return quantizer(0.8 * lo.clamp(max=-1e-3), 0.8 * hi.clamp(min=1e-3), shape, bitwidth)


def ref_qdq(q, x):
    """`x` through the encoding of quantizer `q`: `reference.quantize_dequantize` forward, and
    the straight-through gradient of docs/design.md, ``dx = dy * (not clamped)``, exactly."""
    if q is None or not isinstance(x, Tensor) or not x.is_floating_point():
        return x
    scale, zp = q.get_scale().detach(), q.get_zero_point().detach()
    axis = None
    if scale.dim() > 0:
        full = (1,) * (x.dim() - scale.dim()) + tuple(scale.shape)
        axis = next(d for d, n in enumerate(full) if n > 1)
        scale, zp = scale.reshape(-1), zp.reshape(-1)
    t = torch.round(x.detach() / ref.expand_qparam(scale, x.shape, axis)) + \
        ref.expand_qparam(zp, x.shape, axis)
    not_clamped = (t >= q.qmin) & (t <= q.qmax)
    y = ref.quantize_dequantize(x.detach(), scale, zp, q.qmin, q.qmax, axis)
    return y + (x - x.detach()) * not_clamped


def reference_call(module, wrapper, args, kwargs=None):
    """The torch `module` on reference-qdq'd inputs and parameters; outputs reference-qdq'd."""
    params = {name: ref_qdq(wrapper.param_quantizers[name], p)
              for name, p in module.named_parameters(recurse=False)}
    args = tuple(ref_qdq(q, a) for q, a in zip(wrapper.input_quantizers, args)) + \
        tuple(args[len(wrapper.input_quantizers):])
    out = torch.func.functional_call(module, params, args, kwargs or {})
    if isinstance(out, tuple):
        return tuple(ref_qdq(q, o) for q, o in zip(wrapper.output_quantizers, out)) + \
            out[len(wrapper.output_quantizers):]
    return ref_qdq(wrapper.output_quantizers[0], out)
