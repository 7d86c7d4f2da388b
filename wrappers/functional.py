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

__all__ = ["quantize_dequantize", "quantize", "dequantize", "float_quantize_dequantize",
           "grid_range"]


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
        x: float32, float16 or bfloat16 tensor (half types are computed in fp32 and returned in
            their dtype).
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


def float_quantize_dequantize(x: Tensor, dtype: torch.dtype = torch.float16) -> Tensor:
    """Simulate a 16-bit float: round `x` to `dtype` (ties to even) and back to `x`'s dtype.

    Args:
        x: float32, float16 or bfloat16 tensor.
        dtype: ``torch.float16`` or ``torch.bfloat16``.

    Example::

        >>> float_quantize_dequantize(torch.tensor([1.0 + 2**-11, 70000.0]))
        tensor([1., inf])
    """
    return torch.ops.qsim.float_quantize_dequantize(x, dtype)
