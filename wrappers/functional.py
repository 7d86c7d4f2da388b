"""Functional fake-quantization API (AIMET-compatible names) over the `torch.ops.qsim` ops.

All functions follow the one numeric convention of docs/design.md §2, which is ONNX
QuantizeLinear/DequantizeLinear exactly::

    q = clamp(rint(x / scale) + zero_point, qmin, qmax)     # rint: ties to even
    y = (q - zero_point) * scale

`zero_point` has the ONNX sign (AIMET encodings store ``offset = -zero_point``). Granularity is
chosen by `axis` and `block_size`:

- ``axis=None``: per-tensor, `scale` and `zero_point` hold one value;
- ``axis=a``: per-channel, 1-D `scale` of length ``x.shape[a]``;
- ``axis=a, block_size=b``: blockwise, `scale` has x's shape with ``x.shape[a] // b`` at `a`.
"""

import math
import numbers

import torch
from torch import Tensor

from .float_formats import BLOCK_FORMATS, KINDS, float_format_of, nvfp4_tensor_scale

__all__ = ["quantize_dequantize", "quantize", "dequantize", "float_quantize_dequantize",
           "block_float_quantize_dequantize", "grid_range", "lpbq_scales",
           "lpbq_quantize_dequantize"]


def _scale_arg(v):
    """`scale` as a tensor: a tensor is passed on (the op checks it), a real number becomes a
    float32 scalar; anything else is refused naming the argument."""
    if isinstance(v, Tensor):
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"scale must be a tensor or a real number, got {type(v).__name__} {v!r}")
    return torch.tensor(float(v), dtype=torch.float32)


def _zero_point_arg(v):
    """`zero_point` as a tensor: a tensor is passed on (the op checks it); a Python number must
    be an integer (an integral float such as 3.0 is accepted), never truncated (0.5, 2.7 and NaN
    are refused, as the same value in a tensor is)."""
    if isinstance(v, Tensor):
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"zero_point must be a tensor or an integer, got {type(v).__name__} {v!r}")
    if not isinstance(v, numbers.Integral) and not (math.isfinite(v) and float(v).is_integer()):
        raise ValueError(f"zero_point must be an integer, got {v!r} (it is not truncated)")
    if not -2**31 <= int(v) < 2**31:
        raise ValueError(f"zero_point must be an integer within the grid [qmin, qmax], got {v!r}")
    return torch.tensor(int(v), dtype=torch.int32)


def grid_range(bitwidth: int, *, signed: bool = True, strict: bool = False) -> tuple[int, int]:
    """The integer grid ``(qmin, qmax)`` of a bitwidth.

    Args:
        bitwidth: 2 to 16.
        signed: ``[-2^(b-1), 2^(b-1)-1]`` when True, ``[0, 2^b-1]`` when False.
        strict: strict symmetric ``[-(2^(b-1)-1), 2^(b-1)-1]`` (signed only).

    Returns:
        ``(qmin, qmax)``.

    Raises:
        ValueError: bitwidth outside 2..16, or strict with an unsigned grid.

    Example::

        >>> grid_range(8), grid_range(8, strict=True), grid_range(4, signed=False)
        ((-128, 127), (-127, 127), (0, 15))
    """
    if isinstance(bitwidth, bool) or not isinstance(bitwidth, int) or not 2 <= bitwidth <= 16:
        raise ValueError(f"bitwidth must be an integer from 2 to 16, got {bitwidth!r}")
    if not signed and strict:
        raise ValueError("strict=True needs a signed grid (signed=True)")
    from .quantization.grid import Grid, GridKind  # the package imports this module first

    kind = GridKind.ASYMMETRIC if not signed else \
        GridKind.STRICT_SYMMETRIC if strict else GridKind.SYMMETRIC
    grid = Grid.of(bitwidth, kind)  # the bounds come from C (qsim_grid_bounds)
    return grid.qmin, grid.qmax


def quantize_dequantize(x: Tensor, scale, zero_point, qmin: int, qmax: int,
                        axis: int | None = None, block_size: int | None = None, *,
                        out: Tensor | None = None) -> Tensor:
    """Fake-quantize `x`: quantize to the integer grid and dequantize back, in fp32.

    Args:
        x: float32, float16 or bfloat16 tensor. Half types are computed in fp32 and rounded once
            to their dtype; on the CPU they are read and written directly, widened a
            cache-sized chunk at a time (no fp32 copy of `x`), except for range-learning
            gradients.
        scale: positive finite step size(s), a tensor or a real number.
        zero_point: integer value(s) in ``[qmin, qmax]``, ONNX sign: a tensor (floating when it
            is learned) or a Python integer (an integral float such as ``3.0`` is accepted; 0.5
            raises ValueError rather than being truncated).
        qmin: lowest grid integer.
        qmax: highest grid integer (``qmax - qmin < 2**16``).
        axis: quantization axis for per-channel or blockwise; None for per-tensor.
        block_size: channels per block along `axis` (blockwise), or None.
        out: a tensor of `x`'s shape and dtype to write the result into (`x` itself computes in
            place), so that a caller reusing buffers allocates nothing. Like torch's ``out=``
            functions it does not support autograd: a RuntimeError is raised when grad mode is on
            and an argument requires grad.

    Returns:
        A tensor like `x` (its strides as ``torch.empty_like(x)``), or `out`. Gradients reach
        `x` (straight-through, zero where clamped), `scale` and a floating `zero_point` (range
        learning).

    Example::

        >>> x = torch.tensor([[0.3, -0.7], [2.0, 9.0]])
        >>> quantize_dequantize(x, torch.tensor([0.5, 1.0]), torch.zeros(2), -8, 7, axis=0)
        tensor([[ 0.5000, -0.5000],
                [ 2.0000,  7.0000]])
        >>> buf = torch.empty(2, 2)
        >>> quantize_dequantize(x, 0.5, 0, -8, 7, out=buf) is buf
        True
        >>> buf
        tensor([[ 0.5000, -0.5000],
                [ 2.0000,  3.5000]])
    """
    scale, zero_point = _scale_arg(scale), _zero_point_arg(zero_point)
    if out is None:
        return torch.ops.qsim.quantize_dequantize(x, scale, zero_point, qmin, qmax, axis,
                                                  block_size)
    if torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad
                                       for t in (x, scale, zero_point, out)):
        raise RuntimeError(
            "quantize_dequantize(): out= does not support automatic differentiation (an "
            "argument requires grad); call it without out=, or under torch.no_grad()")
    torch.ops.qsim.quantize_dequantize_out(x, scale, zero_point, qmin, qmax, axis, block_size, out)
    return out


def quantize(x: Tensor, scale, zero_point, qmin: int, qmax: int, axis: int | None = None,
             block_size: int | None = None) -> Tensor:
    """Quantize `x` to grid integers ``clamp(rint(x / scale) + zero_point, qmin, qmax)``.

    The integers are returned in `x`'s floating dtype, so the result stays differentiable;
    arguments are those of :func:`quantize_dequantize`.

    Example::

        >>> quantize(torch.tensor([0.25, 0.75, -9.0]), 0.5, 3, 0, 15)
        tensor([3., 5., 0.])
    """
    return torch.ops.qsim.quantize(
        x, _scale_arg(scale), _zero_point_arg(zero_point), qmin, qmax, axis, block_size)


def dequantize(q: Tensor, scale, zero_point, axis: int | None = None,
               block_size: int | None = None) -> Tensor:
    """Map grid integers back to real values: ``(q - zero_point) * scale``.

    Args:
        q: grid integers held in a float32, float16 or bfloat16 tensor (as :func:`quantize`
            returns them).
        scale, zero_point, axis, block_size: as in :func:`quantize_dequantize`.

    Example::

        >>> dequantize(torch.tensor([3., 5., 0.]), 0.5, 3)
        tensor([ 0.0000,  1.0000, -1.5000])
    """
    return torch.ops.qsim.dequantize(
        q, _scale_arg(scale), _zero_point_arg(zero_point), axis, block_size)


def float_quantize_dequantize(x: Tensor, dtype: torch.dtype | None = torch.float16, scale=None,
                              axis: int | None = None, block_size: int | None = None,
                              exponent_bits: int | None = None, mantissa_bits: int | None = None,
                              saturate: bool = True, *, kind: str = "ieee") -> Tensor:
    """Simulate a narrow float format: ``round(x / scale)`` to the format (ties to even, exact
    subnormals) times `scale`, returned in `x`'s dtype.

    The format is a torch dtype (``float8_e4m3fn``, ``float8_e5m2``, the ``fnuz`` variants,
    ``float4_e2m1fn_x2``, ``float16``, ``bfloat16``) or, with ``dtype=None``,
    ``exponent_bits`` (1..8) and ``mantissa_bits`` (0..23) with the conventions of `kind`
    (``"ieee"`` by default, as AIMET's ``FloatQuantizeDequantize``; see
    :mod:`torchqsim.float_formats`). float16 and bfloat16 without a scale are plain casts, as
    before: they overflow to Inf whatever `saturate` says.

    Args:
        x: float32, float16 or bfloat16 tensor.
        dtype: the format, or None to give exponent_bits and mantissa_bits.
        scale: positive finite scale(s), a tensor or a number; None is 1. Granularity by `axis`
            and `block_size` as in :func:`quantize_dequantize`.
        saturate: values past the largest finite one (and +-Inf) become +-max; otherwise +-Inf
            (ieee kinds) or NaN (fn, fnuz). Formats without Inf and NaN always saturate.
        kind: "ieee", "fn", "fnuz" or "finite", with dtype=None only.

    Returns:
        A tensor like `x`. Gradient: straight-through for x, zero where a saturating format
        clamped.

    Raises:
        ValueError: both or neither of dtype and (exponent_bits, mantissa_bits), an unknown
            dtype or kind, or a format out of range.

    Example::

        >>> float_quantize_dequantize(torch.tensor([1.0 + 2**-11, 70000.0]))
        tensor([1., inf])
        >>> float_quantize_dequantize(torch.tensor([0.3, 50.0, -3.0]), torch.float8_e4m3fn)
        tensor([ 0.3125, 48.0000, -3.0000])
        >>> float_quantize_dequantize(torch.tensor([2.5, 7.0]), None, exponent_bits=2,
        ...                           mantissa_bits=1, kind="finite")
        tensor([2., 6.])
    """
    if dtype is not None and (exponent_bits is not None or mantissa_bits is not None):
        raise ValueError("float_quantize_dequantize: give either dtype or exponent_bits and "
                         "mantissa_bits, not both")
    if dtype in (torch.float16, torch.bfloat16) and scale is None:
        return torch.ops.qsim.float_quantize_dequantize(x, dtype)
    if dtype is not None:
        try:
            exponent_bits, mantissa_bits, kind = float_format_of(dtype)
        except ValueError as e:
            raise ValueError(f"float_quantize_dequantize: {e}") from None
    elif exponent_bits is None or mantissa_bits is None:
        raise ValueError("float_quantize_dequantize: dtype=None needs exponent_bits and "
                         "mantissa_bits")
    if kind not in KINDS:
        raise ValueError(f"float_quantize_dequantize: kind must be one of {KINDS}, got {kind!r}")
    scale = torch.ones((), device=x.device) if scale is None else _scale_arg(scale)
    return torch.ops.qsim.minifloat_quantize_dequantize(
        x, scale, exponent_bits, mantissa_bits, kind, saturate, axis, block_size)


def block_float_quantize_dequantize(x: Tensor, fmt: str, axis: int = -1,
                                    tensor_scale=None) -> Tensor:
    """Simulate an OCP MX v1.0 or NVFP4 block-scaled format along `axis`.

    Consecutive blocks of 32 (MX) or 16 (NVFP4) elements along `axis` share a scale chosen from
    the block's largest magnitude exactly as the specifications define it (E8M0
    ``2^(floor(log2 amax) - emax_elem)`` for MX; E4M3 ``amax / 6 / tensor_scale`` times
    `tensor_scale` for NVFP4); each element is rounded to the element format (ties to even,
    saturating) and scaled back. kernels/include/qsim/minifloat.h states the rules, NaN and Inf
    included. A last block shorter than the block size uses its own elements.

    Args:
        x: float32, float16 or bfloat16 tensor.
        fmt: one of "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8",
            "nvfp4".
        axis: the blocked axis.
        tensor_scale: NVFP4 only: the fp32 tensor scale; None computes it from `x` itself
            (:func:`torchqsim.float_formats.nvfp4_tensor_scale` of ``x.abs().max()``), a
            calibrated quantizer passes the one from its statistics.

    Returns:
        A tensor like `x` (gradient: straight-through).

    Example::

        >>> x = torch.arange(1.0, 33.0)
        >>> block_float_quantize_dequantize(x, "mxfp4")[[0, 3, 19, 27]]
        tensor([ 0.,  4., 16., 32.])
    """
    if fmt not in BLOCK_FORMATS:
        raise ValueError(f"block_float_quantize_dequantize: fmt must be one of "
                         f"{', '.join(BLOCK_FORMATS)}; got {fmt!r}")
    if fmt == "nvfp4" and tensor_scale is None:
        tensor_scale = nvfp4_tensor_scale(x.detach().abs().max() if x.numel() else
                                          torch.zeros((), device=x.device))
    elif tensor_scale is not None:
        tensor_scale = _scale_arg(tensor_scale)
    return torch.ops.qsim.block_float_quantize_dequantize(x, fmt, axis, tensor_scale)


def lpbq_scales(block_scale: Tensor, bitwidth: int, decompressed_bitwidth: int, axis: int):
    """AIMET's low-power blockwise quantization (LPBQ) of blockwise scales: each block's scale
    as a small integer times one float scale per channel.

    With ``n = 2^(decompressed_bitwidth - bitwidth)``, every channel (all the blocks along the
    blocked `axis`, AIMET's ``block_grouping=-1``) gets ``per_channel_scale = max(block_scale) /
    n`` and every block ``per_block_int_scale = clamp(rint(block_scale / per_channel_scale), 1,
    n)``; the block then quantizes with ``per_block_int_scale * per_channel_scale``
    (:func:`lpbq_quantize_dequantize`).

    Args:
        block_scale: positive float32 blockwise scales (x's shape with the blocked axis counted
            in blocks, as :func:`quantize_dequantize` takes them).
        bitwidth: the elements' bits (e.g. 4), 2 to 15.
        decompressed_bitwidth: the bits of element times integer scale (e.g. 8), above
            `bitwidth` and at most 16.
        axis: the blocked axis of `block_scale`.

    Returns:
        ``(per_block_int_scale, per_channel_scale)``: float32 tensors, the first like
        `block_scale` (integers 1..n), the second with size 1 on `axis`.

    Raises:
        ValueError: naming the argument: bitwidths out of range, or scales not finite and > 0.

    Example::

        >>> ints, ch = lpbq_scales(torch.tensor([[0.1, 0.4, 0.001]]), 4, 8, axis=1)
        >>> ints, ch
        (tensor([[ 4., 16.,  1.]]), tensor([[0.0250]]))
    """
    for name, v in (("bitwidth", bitwidth), ("decompressed_bitwidth", decompressed_bitwidth)):
        if isinstance(v, bool) or not isinstance(v, int) or not 2 <= v <= 16:
            raise ValueError(f"lpbq_scales: {name} must be an integer from 2 to 16, got {v!r}")
    if decompressed_bitwidth <= bitwidth:
        raise ValueError(f"lpbq_scales: decompressed_bitwidth ({decompressed_bitwidth}) must be "
                         f"above bitwidth ({bitwidth})")
    s = block_scale.detach().float()
    if s.numel() == 0 or not bool(torch.isfinite(s).all() and (s > 0).all()):
        raise ValueError("lpbq_scales: block_scale must hold finite values > 0")
    n = float(2 ** (decompressed_bitwidth - bitwidth))
    per_channel = s.amax(dim=axis, keepdim=True) / n
    ints = torch.clamp(torch.round(s / per_channel), 1.0, n)
    return ints, per_channel


def lpbq_quantize_dequantize(x: Tensor, per_block_int_scale: Tensor, per_channel_scale: Tensor,
                             qmin: int, qmax: int, axis: int, block_size: int) -> Tensor:
    """Fake-quantize `x` blockwise with LPBQ scales (:func:`lpbq_scales`): the scale of a block
    is ``per_block_int_scale * per_channel_scale`` (fp32), symmetric (zero point 0), as
    aimet-torch's ``GroupedBlockQuantizeDequantize`` applies it.

    Args:
        x: float32, float16 or bfloat16 tensor.
        per_block_int_scale: integer-valued scales, x's shape with ``x.shape[axis] //
            block_size`` at `axis`.
        per_channel_scale: float scales broadcastable to `per_block_int_scale` (size 1 on
            `axis`).
        qmin, qmax: the element grid (``grid_range(4)`` for 4-bit).
        axis: the blocked axis.
        block_size: elements per block along `axis`.

    Returns:
        :func:`quantize_dequantize` of `x` with those block scales (gradient straight-through,
        zero where clamped; the scales get gradients as in :func:`quantize_dequantize`).

    Example::

        >>> x = torch.tensor([[0.3, -0.7, 2.0, 9.0]])
        >>> lpbq_quantize_dequantize(x, torch.tensor([[1.0, 16.0]]), torch.tensor([[0.1]]),
        ...                          -8, 7, axis=1, block_size=2)
        tensor([[ 0.3000, -0.7000,  1.6000,  9.6000]])
    """
    scale = per_block_int_scale * per_channel_scale
    return quantize_dequantize(x, scale, torch.zeros(scale.shape, dtype=torch.int32), qmin, qmax,
                               axis, block_size)
