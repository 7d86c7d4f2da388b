"""Pure-torch references for the narrow float formats, written from the definitions (not from the
kernels' bit tricks): minifloat rounding through frexp in float64, and the OCP MX v1.0 / NVFP4 block
conversions (kernels/include/qsim/minifloat.h states the same rules)."""

import math

import torch

from torchqsim.float_formats import float_max

_ELEMENTS = {"mxfp8_e4m3": (4, 3, "fn"), "mxfp8_e5m2": (5, 2, "ieee"),
             "mxfp6_e3m2": (3, 2, "finite"), "mxfp6_e2m3": (2, 3, "finite"),
             "mxfp4": (2, 1, "finite"), "nvfp4": (2, 1, "finite")}


def round_minifloat(v, e, m, kind="ieee", saturate=True):
    """v (any float tensor) rounded to the format, as float64: ties to even, exact subnormals."""
    v = v.double()
    bias = 2 ** (e - 1) - 1 + (kind == "fnuz")
    emin, top = 1 - bias, float_max(e, m, kind)
    _, ex = torch.frexp(v)  # |v| in [2^(ex-1), 2^ex)
    step = torch.exp2((torch.clamp(ex - 1, min=emin) - m).double())
    r = torch.round(v / step) * step  # round half to even
    finite = torch.isfinite(v)
    r = torch.where(finite, r, v)
    over = r.abs() > top
    if saturate or kind == "finite":
        r = torch.where(over, torch.copysign(torch.full_like(r, top), v), r)
    else:
        special = math.inf if kind == "ieee" else math.nan
        r = torch.where(over, torch.copysign(torch.full_like(r, special), v), r)
    if kind == "fnuz":
        r = torch.where(r == 0, torch.zeros_like(r), r)
    return r


def _blocks(x, axis, size):
    """x moved to [..., nblocks, size] (zero padded), and a function undoing it."""
    xm = x.float().movedim(axis, -1)
    n = xm.shape[-1]
    pad = (-n) % size
    xp = torch.nn.functional.pad(xm, (0, pad))
    blocks = xp.reshape(*xp.shape[:-1], -1, size)

    def undo(y):
        return y.reshape(xp.shape)[..., :n].movedim(-1, axis)

    return blocks, undo


def block_reference(x, fmt, axis=-1, tensor_scale=None):
    """The block format conversion of x, as float32, from the specifications."""
    size = 16 if fmt == "nvfp4" else 32
    b, undo = _blocks(x, axis, size)
    amax = b.abs().amax(-1, keepdim=True)  # NaN propagates
    bad = ~torch.isfinite(amax)
    if fmt == "nvfp4":
        d = torch.as_tensor(tensor_scale, dtype=torch.float32)
        q = round_minifloat(amax / 6.0 / d, 4, 3, "fn").float()
        s = q * d
        y = round_minifloat(b / s, 2, 1, "finite").float() * s
        y = torch.where(s == 0, b * 0.0, y)
    else:
        _, ex = torch.frexp(amax.double())
        if fmt == "mxint8":
            emax = 0
        else:
            emax = math.floor(math.log2(float_max(*_ELEMENTS[fmt])))
        shared = torch.where(amax == 0, torch.full_like(ex, -127), torch.clamp(ex - 1 - emax, min=-127))
        s = torch.exp2(shared.double())
        if fmt == "mxint8":
            k = torch.clamp(torch.round(b.double() / s * 64), -128, 127) + 0.0  # no -0 in int8
            y = (k * s / 64).float()
        else:
            y = (round_minifloat((b.double() / s).float(), *_ELEMENTS[fmt]) * s).float()
    y = torch.where(bad, torch.full_like(y, math.nan), y)
    return undo(y)
