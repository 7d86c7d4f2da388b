"""The target-mode forwards of the fused modules (docs/runtime_target.md §2).

Each forward reads the grid integers of its inputs (their quantize-dequantized values divided
by the scale), computes the fused kernel's integer result with :mod:`.arithmetic` and returns it
dequantized on the output grid, ``k * y_scale``. When the output quantizer is the module's own,
it still runs (the identity on values already on its grid), so hooks and reports see it; when
it sits on the following ReLU, that ReLU and its quantizer map ``k * y_scale`` to the same
grid point.

The modules keep the reference semantics (the class's forward) while training, while a
quantizer of the group calibrates or has no encoding. Under autograd the integer arithmetic
has no gradient: a target-mode forward with grad enabled raises.
"""

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from . import arithmetic as ar
from . import native
from .groups import FusedGroup
from ..nn.elementwise import QuantizedAddMm

__all__ = ["target_forward"]

_CONV = {1: F.conv1d, 2: F.conv2d}


def _params(q) -> tuple[Tensor, Tensor]:
    """fp32 ``(scale, zero_point)`` of a quantizer, as its forward and the export use them."""
    with torch.no_grad():
        return q._scale_zero_point()


def _reference(module, args, kwargs):
    return type(module).forward(module, *args, **kwargs)


def _ready(module, group: FusedGroup) -> bool:
    return not module.training and all(
        q is None or (not q._calibrating and q.is_initialized())
        for q in (*group.inputs, group.output))


def _check_no_grad(module) -> None:
    if torch.is_grad_enabled():
        raise RuntimeError(f"{type(module).__name__}: the onnxruntime target mode computes "
                           f"integer kernels without gradients; run it under torch.no_grad() "
                           f"or call sim.set_target('reference') to train")


def _requantized(module, group: FusedGroup, acc: Tensor, multiplier: Tensor,
                 channel_dim: int = -1) -> Tensor:
    """``k * y_scale`` (:func:`.arithmetic.requantize_dequantized`; `multiplier`: one value, or
    one per index of `channel_dim`), through the output quantizer unless it sits on a ReLU."""
    y_scale, y_zp = _params(group.output)
    zp = int(y_zp)
    y = native.requantize_dequantized(acc, multiplier, channel_dim, group.output.qmin - zp,
                                  group.output.qmax - zp, y_scale)
    return y if group.through_relu else module.quantize_outputs(y)


def _weighted(module, group: FusedGroup, x: Tensor, op, channel_dim: int) -> Tensor:
    """QLinearConv / QGemm: integer accumulation, int32 bias, MLAS requantization."""
    x = module.quantize_inputs((x,))[0]
    x_scale, _ = _params(group.inputs[0])
    w_scale, _ = _params(group.inputs[1])
    w_scale = w_scale.reshape(-1)
    weight = module.quantized_param("weight")
    w_int = ar.grid_integers(weight, w_scale.reshape((-1,) + (1,) * (weight.dim() - 1))
                             if w_scale.numel() > 1 else w_scale)
    bias = module.quantized_param("bias") if module.bias is not None else None
    b_int = None if bias is None else ar.quantized_bias(bias, x_scale, w_scale)
    x_int = ar.grid_integers(x, x_scale)
    if group.saturates and getattr(module, "groups", 1) == 1:
        zero = float(_params(group.inputs[0])[1]) - group.inputs[0].qmin  # uint8 zero point
        acc = _saturated_accumulate(module, x_int + zero, zero, w_int, b_int)
    else:
        acc = ar.integer_accumulate(op, x_int, w_int, b_int, channel_dim)
    y_scale, _ = _params(group.output)
    return _requantized(module, group, acc, (x_scale * w_scale) / y_scale, channel_dim)


def _saturated_accumulate(module, stored: Tensor, zero: float, w_int: Tensor,
                          b_int: Tensor | None) -> Tensor:
    """The accumulator of MLAS's u8 x s8 kernels with int16 pair saturation
    (:func:`.arithmetic.saturated_matmul` on the stored integers `stored`, zero point `zero`
    included, minus ``zero * sum(w)`` as MLAS corrects it, plus the int32 bias), laid out as the
    module's output. The reduction runs over input features (QGemm) or, for a convolution, over
    kernel positions then input channels (onnxruntime reorders the filter to that order), the
    padding holding the stored zero point."""
    if not hasattr(module, "kernel_size"):
        cols, w, out_shape = stored.reshape(-1, stored.shape[-1]), w_int, stored.shape[:-1]
    else:
        cols, w, out_shape = _im2col(module, stored, zero, w_int)
    correction = -zero * w.sum(1) + (0 if b_int is None else b_int)  # exact integers
    acc = ar.saturated_matmul(cols, w).add_(correction.to(torch.int32)).float()
    if not hasattr(module, "kernel_size"):
        return acc.reshape(*out_shape, -1)
    return acc.reshape(out_shape[0], -1, acc.shape[1]).transpose(1, 2).reshape(
        out_shape[0], acc.shape[1], *out_shape[1:])


def _im2col(module, stored: Tensor, zero: float, w_int: Tensor):
    """``(cols, w, (batch, *spatial))`` of a convolution in MLAS's reduction order: `cols` ``(batch
    * positions, kernel positions * channels)`` uint8, gathered from the zero-point-padded input
    in channels-last layout by one strided copy, `w` the filter in that order, and the output's
    batch and spatial shape."""
    one_d = stored.dim() == 3
    x, w = (stored.unsqueeze(2), w_int.unsqueeze(2)) if one_d else (stored, w_int)
    lift = (lambda v: (1,) + tuple(v)) if one_d else tuple
    pad = [p for p in reversed(((0,) if one_d else ()) + tuple(module.padding)) for _ in range(2)]
    x = F.pad(x.to(torch.uint8), pad, value=int(zero)).permute(0, 2, 3, 1).contiguous()
    (dh, dw), (sh, sw), (kh, kw) = lift(module.dilation), lift(module.stride), w.shape[2:]
    n, height, width, c = x.shape
    out_h, out_w = (height - dh * (kh - 1) - 1) // sh + 1, (width - dw * (kw - 1) - 1) // sw + 1
    bn, bh, bw, bc = x.stride()
    cols = x.as_strided((n, out_h, out_w, kh, kw, c), (bn, bh * sh, bw * sw, bh * dh, bw * dw, bc))
    w = w.reshape(w.shape[0], c, kh * kw).transpose(1, 2).reshape(w.shape[0], -1)
    return cols.reshape(-1, kh * kw * c), w, (n, out_w) if one_d else (n, out_h, out_w)


def _conv(module, group, x):
    conv = functools.partial(_CONV[len(module.kernel_size)], stride=module.stride,
                             padding=module.padding, dilation=module.dilation,
                             groups=module.groups)
    return _weighted(module, group, x, lambda a, w: conv(a, w), 1)


def _gemm(module, group, x):
    return _weighted(module, group, x, F.linear, -1)


def _scalar_operand(a_shape, b_shape) -> int | None:
    """Which operand (0: A, 1: B, None: neither) onnxruntime's broadcast loop hands to MLAS as
    a scalar per span: the one of size 1 on the innermost dimension of size > 1 of the output
    (the spans run along it)."""
    out = torch.broadcast_shapes(a_shape, b_shape)
    inner = max((i - len(out) for i, n in enumerate(out) if n > 1), default=None)
    if inner is None:
        return None
    for index, shape in enumerate((a_shape, b_shape)):
        if len(shape) < -inner or shape[inner] == 1:
            return index
    return None


def _add(module, group, a, b):
    """QLinearAdd (:func:`.arithmetic.qlinear_add`), any broadcast: an operand that is a scalar
    per span is MLAS's B (onnxruntime swaps A and B when it is A); same shapes with the AVX2
    kernel: one C pass (:func:`.arithmetic.qlinear_add_dequantized`)."""
    a, b = module.quantize_inputs((a, b))
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        return module.quantize_outputs(module.quantized_forward(a, b))
    (sa, za), (sb, zb), (sc, zc) = (_params(q) for q in (*group.inputs, group.output))
    za, zb, zc = int(za), int(zb), int(zc)
    low = -128 if group.output.qmin < 0 else 0
    if a.shape == b.shape and a.device.type == "cpu" and ar.uses_fma() and \
            hasattr(torch.ops.qsim, "qlinear_add_dq"):
        return module.quantize_outputs(native.qlinear_add_dequantized(
            a.float(), b.float(), (sa, za), (sb, zb), (sc, zc), (low, low + 255)))
    qa = ar.grid_integers(a, sa) + za
    qb = ar.grid_integers(b, sb) + zb
    scalar = _scalar_operand(a.shape, b.shape)
    ops = ((qb, qa), ((sb, zb), (sa, za))) if scalar == 0 else ((qa, qb), ((sa, za), (sb, zb)))
    r = ar.qlinear_add(*ops[0], *ops[1], (sc, zc), (low, low + 255), ar.uses_fma(),
                       scalar_b=scalar is not None)
    return module.quantize_outputs((r - zc) * sc)


def _mul(module, group, a, b):
    """QLinearMul (:func:`.arithmetic.qlinear_mul`)."""
    a, b = module.quantize_inputs((a, b))
    (sa, _), (sb, _), (sc, zc) = (_params(q) for q in (*group.inputs, group.output))
    zc = int(zc)
    low = -128 if group.output.qmin < 0 else 0
    ratio = (sa * sb) / sc
    r = ar.qlinear_mul(ar.grid_integers(a, sa), ar.grid_integers(b, sb), ratio, zc,
                       (low, low + 255))
    return module.quantize_outputs((r - zc) * sc)


def _matmul(module, group, a, b):
    """QLinearMatMul of two uint8 activations: the exact integer product (MLAS's u8 x u8
    kernels widen to int16 and add pairs in int32: no saturation), then the QGemm
    requantization with ``fp32(fp32(a_scale * b_scale) / y_scale)``."""
    a, b = module.quantize_inputs((a, b))
    (sa, _), (sb, _), (sy, _) = (_params(q) for q in (*group.inputs, group.output))
    acc = ar.exact_matmul(ar.grid_integers(a, sa), ar.grid_integers(b, sb))
    return _requantized(module, group, acc, (sa * sb) / sy)


def _softmax(module, group, x):
    """QLinearSoftmax of a uint8 activation (:func:`.arithmetic.qlinear_softmax`)."""
    x = module.quantize_inputs((x,))[0]
    (sx, zx), (sy, zy) = _params(group.inputs[0]), _params(group.output)
    q = (ar.grid_integers(x, sx) + float(zx)).movedim(module.dim, -1)
    y = ar.qlinear_softmax(q, ar.softmax_table(float(sx), q.shape[-1]), sy, int(zy),
                           ar.uses_avx512())
    return module.quantize_outputs(((y - float(zy)) * sy).movedim(-1, module.dim))


def _matmulnbits(module, group, x):
    """MatMulNBits of a Linear with an 8-bit weight (:func:`.arithmetic.matmul_nbits`) on an
    input of 3+ dims (a 2-D input exports as a Gemm, which onnxruntime runs in float: the
    reference), or of an ``AddMm`` (2-D, its ``(in, out)`` weight transposed); the bias as onnxruntime's int32 DequantizeLinear gives it when a
    DequantizeLinear feeds the input and a QuantizeLinear reads the output (its bias
    quantization pass needs the ``DQ -> MatMul -> Add -> Q`` group; measured: a ReLU between
    keeps the float bias): :func:`.arithmetic.quantized_bias` times the product scale, in fp32."""
    transposed = isinstance(module, QuantizedAddMm)  # its weight is (in, out)
    if x.dim() < 3 and not transposed:
        return _reference(module, (x,), {})
    x = module.quantize_inputs((x,))[0]
    w_q = group.inputs[1]
    w_scale, w_zp = _params(w_q)
    w_scale = w_scale.reshape(-1)
    weight = module.quantized_param("weight")
    weight = weight.t() if transposed else weight
    w_int = ar.grid_integers(weight, w_scale.reshape(-1, 1) if w_scale.numel() > 1 else w_scale)
    bias = module.quantized_param("bias") if module.bias is not None else None
    if bias is not None and group.inputs[0] is not None and group.output is not None:
        product = _params(group.inputs[0])[0] * w_scale
        bias = ar.quantized_bias(bias, _params(group.inputs[0])[0], w_scale) * product
    stored_zp = w_zp.reshape(-1) + (128 if w_q.qmin < 0 else 0)
    y = native.matmul_nbits(x, w_int, w_scale, stored_zp, bias)
    return module.quantize_outputs(y)


_FORWARDS = {"conv": _conv, "gemm": _gemm, "add": _add, "mul": _mul, "matmul": _matmul,
             "softmax": _softmax, "matmulnbits": _matmulnbits}


def target_forward(module, group: FusedGroup, *args, **kwargs):
    """The target-mode forward of a fused group's module (installed by ``set_target``): the
    group's integer kernels once every quantizer is calibrated, else the reference forward."""
    if not _ready(module, group):
        return _reference(module, args, kwargs)
    _check_no_grad(module)
    return _FORWARDS[group.kind](module, group, *args, **kwargs)
