"""Narrow float formats: `float_quantize_dequantize` (minifloats, FP8, FP4) and
`block_float_quantize_dequantize` (OCP MX v1.0, NVFP4).

Oracles: torch's own casts (``x.to(torch.float8_*)``) bit for bit over every fp16 value and random
fp32 patterns; the pure-torch references of tests/python/float_reference.py (written from the
format definitions and the specifications); hand-computed known answers; properties (power-of-two
MX scales, representable elements, idempotence); torch.library.opcheck; the gradient by hand.
onnxruntime comparisons are in tests/python/export/test_float_formats_onnx.py.
"""

import math

import pytest
import torch

import float_reference as fref
import torchqsim.functional as F
from asserts import assert_same
from torchqsim.float_formats import BLOCK_FORMATS, float_max

ops = torch.ops.qsim

TORCH_FP8 = {  # dtype -> the saturate flag that reproduces torch's cast
    torch.float8_e4m3fn: True,  # torch 2.13 saturates e4m3fn (and maps +-Inf to +-448)
    torch.float8_e5m2: False,
    torch.float8_e4m3fnuz: False,
    torch.float8_e5m2fnuz: False,
}
MX = [f for f in BLOCK_FORMATS if f != "nvfp4"]


def all_fp16_values():
    """Every fp16 bit pattern (NaNs and Infs included) as float32."""
    return torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.float16).float()


def random_fp32(n=1 << 20, seed=0):
    """Random fp32 bit patterns (every exponent, NaNs and Infs included)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-(2**31), 2**31 - 1, (n,), generator=g, dtype=torch.int32).view(torch.float32)


# ---- minifloats against torch's casts ----------------------------------------------------------

@pytest.mark.parametrize("dtype", list(TORCH_FP8), ids=str)
@pytest.mark.parametrize("inputs", ["all_fp16", "random_fp32"])
def test_fp8_matches_torch_cast_bit_for_bit(dtype, inputs):
    x = all_fp16_values() if inputs == "all_fp16" else random_fp32()
    got = F.float_quantize_dequantize(x, dtype, saturate=TORCH_FP8[dtype])
    assert_same(got, x.to(dtype).float(), f"{dtype} on {inputs}")


@pytest.mark.parametrize("dtype", list(TORCH_FP8), ids=str)
def test_fp8_matches_reference_both_saturations(dtype):
    x = torch.cat([all_fp16_values(), random_fp32(1 << 16, seed=1)])
    e, m, kind = {torch.float8_e4m3fn: (4, 3, "fn"), torch.float8_e5m2: (5, 2, "ieee"),
                  torch.float8_e4m3fnuz: (4, 3, "fnuz"), torch.float8_e5m2fnuz: (5, 2, "fnuz")}[dtype]
    for saturate in (True, False):
        got = F.float_quantize_dequantize(x, dtype, saturate=saturate)
        assert_same(got, fref.round_minifloat(x, e, m, kind, saturate).float(),
                    f"{dtype} saturate={saturate}")


def test_fp4_e2m1_known_answers_and_reference():
    # E2M1 values: 0, 0.5, 1, 1.5, 2, 3, 4, 6; ties to the even code
    x = torch.tensor([0.25, 0.75, 1.25, 2.5, 3.5, 5.0, 7.0, -math.inf, 0.2, -1.75, math.nan])
    want = torch.tensor([0.0, 1.0, 1.0, 2.0, 4.0, 4.0, 6.0, -6.0, 0.0, -2.0, math.nan])
    got = F.float_quantize_dequantize(x, None, exponent_bits=2, mantissa_bits=1, kind="finite")
    assert_same(got, want, "e2m1 by hand")
    if hasattr(torch, "float4_e2m1fn_x2"):  # torch has the dtype but no cast to it (2.13)
        assert_same(F.float_quantize_dequantize(x, torch.float4_e2m1fn_x2), want, "dtype")
    xs = all_fp16_values()
    assert_same(F.float_quantize_dequantize(xs, None, exponent_bits=2, mantissa_bits=1,
                                            kind="finite"),
                fref.round_minifloat(xs, 2, 1, "finite").float(), "e2m1 on every fp16 value")


@pytest.mark.parametrize("e,m", [(1, 2), (2, 2), (3, 4), (5, 7), (6, 1), (7, 12), (8, 3)])
@pytest.mark.parametrize("kind", ["ieee", "fn", "fnuz", "finite"])
def test_any_minifloat_matches_reference(e, m, kind):
    if (kind == "ieee" and e == 1) or (kind in ("fn", "finite") and e == 8):
        with pytest.raises(ValueError, match="exponent_bits"):
            F.float_quantize_dequantize(torch.ones(2), None, exponent_bits=e, mantissa_bits=m,
                                        kind=kind)
        return
    x = torch.cat([all_fp16_values(), random_fp32(1 << 15, seed=e * 31 + m)])
    for saturate in (True, False):
        got = F.float_quantize_dequantize(x, None, exponent_bits=e, mantissa_bits=m,
                                          saturate=saturate, kind=kind)
        assert_same(got, fref.round_minifloat(x, e, m, kind, saturate).float(),
                    f"e{e}m{m} {kind} saturate={saturate}")


def test_fp16_bf16_path_unchanged():
    x = random_fp32(1 << 16, seed=5)
    for dtype in (torch.float16, torch.bfloat16):
        assert_same(F.float_quantize_dequantize(x, dtype), x.to(dtype).float(), str(dtype))
    # with a scale the minifloat kernel runs, saturating by default
    y = F.float_quantize_dequantize(torch.tensor([1e6, 3.0]), torch.float16, scale=2.0)
    assert_same(y, torch.tensor([131008.0, 3.0]), "fp16 with scale 2")


@pytest.mark.parametrize("granularity", ["tensor", "channel", "block"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_scaled_fp8_matches_composite(granularity, dtype):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(6, 8, 5, generator=g) * 100).to(dtype)
    if granularity == "tensor":
        scale, axis, block, s = torch.tensor(0.37), None, None, torch.tensor(0.37)
    elif granularity == "channel":
        scale = torch.rand(8, generator=g) + 0.1
        axis, block, s = 1, None, scale.view(1, 8, 1)
    else:
        scale = torch.rand(6, 2, 5, generator=g) + 0.1
        axis, block, s = 1, 4, scale.repeat_interleave(4, dim=1)
    got = F.float_quantize_dequantize(x, torch.float8_e4m3fn, scale=scale, axis=axis,
                                      block_size=block)
    want = ((x.float() / s).to(torch.float8_e4m3fn).float() * s).to(dtype)
    assert_same(got, want, f"{granularity} {dtype}")
    xt = x.transpose(0, 2)  # a non-contiguous view: same values
    scale_t = scale.transpose(0, 2) if block else scale  # blockwise scales have x's dims
    got_t = F.float_quantize_dequantize(xt, torch.float8_e4m3fn, scale=scale_t,
                                        axis=None if axis is None else 1, block_size=block)
    assert_same(got_t, want.transpose(0, 2), "transposed input")


def test_gradient_is_straight_through_zero_where_clamped():
    x = torch.tensor([1.0, 500.0, -449.0, 448.0, -3.0], requires_grad=True)
    F.float_quantize_dequantize(x, torch.float8_e4m3fn).mul(torch.arange(1.0, 6.0)).sum().backward()
    assert_same(x.grad, torch.tensor([1.0, 0.0, 0.0, 4.0, 5.0]), "saturating")
    x.grad = None
    F.float_quantize_dequantize(x, torch.float8_e5m2, saturate=False).sum().backward()
    assert_same(x.grad, torch.ones(5), "non-saturating: identity")
    x.grad = None
    F.block_float_quantize_dequantize(x, "mxfp4").mul(2.0).sum().backward()
    assert_same(x.grad, torch.full((5,), 2.0), "block: identity")


def test_opcheck():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 64, generator=g, requires_grad=True)
    torch.library.opcheck(ops.minifloat_quantize_dequantize,
                          (x, torch.tensor(0.5), 4, 3, "fn", True, None, None))
    torch.library.opcheck(ops.minifloat_quantize_dequantize,
                          (x, torch.rand(64, generator=g) + 0.5, 5, 2, "ieee", False, 1, None))
    for fmt in ("mxfp4", "mxint8"):
        torch.library.opcheck(ops.block_float_quantize_dequantize, (x, fmt, 1, None))
    torch.library.opcheck(ops.block_float_quantize_dequantize, (x, "nvfp4", 0, torch.tensor(0.01)))


def test_bad_arguments_are_named():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="not both"):
        F.float_quantize_dequantize(x, torch.float8_e4m3fn, exponent_bits=4, mantissa_bits=3)
    with pytest.raises(ValueError, match="dtype must be one of"):
        F.float_quantize_dequantize(x, torch.int8)
    with pytest.raises(ValueError, match="kind"):
        F.float_quantize_dequantize(x, None, exponent_bits=4, mantissa_bits=3, kind="weird")
    with pytest.raises(ValueError, match="mantissa_bits must be in 0..23"):
        F.float_quantize_dequantize(x, None, exponent_bits=4, mantissa_bits=24)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        F.float_quantize_dequantize(x, torch.float8_e4m3fn, scale=-1.0)
    with pytest.raises(ValueError, match="fmt must be one of"):
        F.block_float_quantize_dequantize(x, "mxfp3")
    with pytest.raises(IndexError, match="axis 5 is out of range"):
        F.block_float_quantize_dequantize(x, "mxfp4", axis=5)
    with pytest.raises(ValueError, match="tensor_scale is for nvfp4 only"):
        F.block_float_quantize_dequantize(x, "mxfp4", tensor_scale=1.0)
    with pytest.raises(ValueError, match="tensor_scale must be finite and > 0"):
        F.block_float_quantize_dequantize(x, "nvfp4", tensor_scale=0.0)


# ---- block formats ------------------------------------------------------------------------------

def block_data(shape, seed, specials=True):
    """Random blocks at random magnitudes, with zeros, subnormals and (optionally) NaN and Inf."""
    g = torch.Generator().manual_seed(seed)
    mags = torch.randint(-130, 100, shape, generator=g).float()
    x = torch.randn(shape, generator=g) * torch.exp2(mags)
    x.view(-1)[::37] = 0.0
    if specials:
        x.view(-1)[5::211] = math.nan
        x.view(-1)[17::307] = -math.inf
    return x


@pytest.mark.parametrize("fmt", list(BLOCK_FORMATS))
@pytest.mark.parametrize("axis,shape", [(-1, (7, 96)), (0, (64, 5)), (1, (3, 50, 4))])
def test_block_matches_spec_reference(fmt, axis, shape):
    x = block_data(shape, seed=len(fmt) + axis)
    d = torch.tensor(3.7e-3) if fmt == "nvfp4" else None
    got = F.block_float_quantize_dequantize(x, fmt, axis=axis, tensor_scale=d)
    assert_same(got, fref.block_reference(x, fmt, axis, d), f"{fmt} axis {axis}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_block_half_inputs(dtype):
    x = block_data((4, 64), seed=9, specials=False).clamp(-1e4, 1e4).to(dtype)
    got = F.block_float_quantize_dequantize(x, "mxfp8_e4m3")
    assert_same(got, fref.block_reference(x.float(), "mxfp8_e4m3").to(dtype), str(dtype))


def test_block_known_answers():
    x = torch.arange(1.0, 33.0)  # amax 32 -> E8M0 scale 2^(5 - 2) = 8 for E2M1 elements
    y = F.block_float_quantize_dequantize(x, "mxfp4")
    assert_same(y[[0, 3, 19, 27, 31]], torch.tensor([0.0, 4.0, 16.0, 32.0, 32.0]), "mxfp4")
    # mxfp8_e4m3 on 1..16 (one short block): emax 8 -> scale 2^(4-8); x * 16 is exact in E4M3
    assert_same(F.block_float_quantize_dequantize(x[:16], "mxfp8_e4m3"), x[:16], "mxfp8_e4m3")
    # mxint8: scale 2^5 / 64 = 0.5 per step: 1..32 exact
    assert_same(F.block_float_quantize_dequantize(x, "mxint8"), x, "mxint8 exact")
    x2 = torch.tensor([-2.0] + [0.0] * 31) * 1.999  # -3.998: scale 2^1/64; rint(-127.94) = -128
    assert_same(F.block_float_quantize_dequantize(x2, "mxint8")[0], torch.tensor(-4.0), "int8 -2")
    # nvfp4, tensor scale 0.5: amax 32 -> 32/6/0.5 = 10.67 -> E4M3 11 -> block scale 5.5;
    # 32/5.5 = 5.8 -> 6 -> 33; 10/5.5 = 1.82 -> 2 -> 11
    x3 = torch.tensor([32.0, 10.0] + [0.0] * 14)
    y3 = F.block_float_quantize_dequantize(x3, "nvfp4", tensor_scale=0.5)
    assert_same(y3[:2], torch.tensor([33.0, 11.0]), "nvfp4")
    nan_block = torch.ones(64)
    nan_block[40] = math.nan
    y4 = F.block_float_quantize_dequantize(nan_block, "mxfp4")
    assert bool(y4[32:].isnan().all()) and not bool(y4[:32].isnan().any())


@pytest.mark.parametrize("fmt", MX + ["nvfp4"])
def test_block_properties(fmt):
    x = block_data((16, 128), seed=11, specials=False)
    d = torch.tensor(2.0**-20) if fmt == "nvfp4" else None  # a power of two: S / d is exact
    y = F.block_float_quantize_dequantize(x, fmt, tensor_scale=d)
    # idempotence
    assert_same(F.block_float_quantize_dequantize(y, fmt, tensor_scale=d), y, "idempotent")
    if fmt == "nvfp4":
        return
    # the scale of each block is a power of two and every element is representable
    b = x.reshape(16, 4, 32)
    _, ex = torch.frexp(b.abs().amax(-1, keepdim=True))
    emax = 0 if fmt == "mxint8" else math.floor(math.log2(float_max(*fref._ELEMENTS[fmt])))
    s = torch.exp2(torch.clamp(ex - 1 - emax, min=-127).double())
    assert bool((torch.frexp(s)[0] == 0.5).all()), "scale not a power of two"
    q = y.reshape(16, 4, 32).double() / s
    if fmt == "mxint8":
        assert bool((q * 64 == torch.round(q * 64)).all() & (q * 64 >= -128).all() & (q * 64 <= 127).all())
    else:
        rq = fref.round_minifloat(q.float(), *fref._ELEMENTS[fmt])
        assert bool((rq == q).all()), "an element is not representable in the element format"


def test_nvfp4_dynamic_tensor_scale():
    x = block_data((8, 64), seed=12, specials=False)
    d = (x.abs().amax() / 2688.0)
    assert_same(F.block_float_quantize_dequantize(x, "nvfp4"),
                fref.block_reference(x, "nvfp4", -1, d), "dynamic tensor scale")
