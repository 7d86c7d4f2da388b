"""Forward numerics of the qdq ops (`torchqsim.functional` and `torch.ops.qsim`).

Oracles: the pure-torch reference of the docs/design.md §2 formula (tests/python/reference.py), bit for
bit; hand-computed answers at rounding ties and grid ends (which also pin the reference down);
torch's own fp32 -> fp16 / bf16 casts for `float_quantize_dequantize`; and the op itself on a
contiguous copy or with another zero-point dtype, where only the layout in memory changes.
"""

import doctest
import math

import pytest
import torch

import reference as ref
import torchqsim.functional as F
from asserts import assert_same
from qdq_cases import LAYOUTS, SHAPE, grid_data, make_qparams, qparam_shape, with_specials

ops = torch.ops.qsim
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
GRIDS = {"signed": {}, "strict": {"strict": True}, "unsigned": {"signed": False}}


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _case(seed, layout, qmin=-128, qmax=127, shape=SHAPE):
    """(x with special values, scale, zero_point, axis, block_size) for a layout."""
    g = _gen(seed)
    axis, block = LAYOUTS[layout]
    scale, zp = make_qparams(g, shape, axis, block, qmin, qmax)
    x = with_specials(grid_data(g, shape, scale, zp, qmin, qmax, axis, block))
    return x, scale, zp, axis, block


# ---- hand-computed answers ----------------------------------------------------------------------

# scale 0.25 is a power of two, so x / scale is exact: t = [0.5, 1.5, 2.5, -0.5, -1.5, 4, -20, 20].
TIES_X = torch.tensor([0.125, 0.375, 0.625, -0.125, -0.375, 1.0, -5.0, 5.0])


@pytest.mark.parametrize("api", ["functional", "reference"])
def test_ties_round_to_even_and_saturate_by_hand(api):
    qdq = F.quantize_dequantize if api == "functional" else ref.quantize_dequantize
    quantize = F.quantize if api == "functional" else ref.quantize
    s = torch.tensor(0.25)
    # zp 0, grid [-4, 3]: rint(t) = [0, 2, 2, -0, -2, 4, -20, 20]; + zp turns -0 into +0 (IEEE
    # -0 + 0 = +0) -> clamp [0, 2, 2, 0, -2, 3, -4, 3]
    q = quantize(TIES_X, s, torch.tensor(0), -4, 3)
    assert_same(q, torch.tensor([0.0, 2.0, 2.0, 0.0, -2.0, 3.0, -4.0, 3.0]), "quantize zp=0")
    # y = q * 0.25
    y = qdq(TIES_X, s, torch.tensor(0), -4, 3)
    assert_same(y, torch.tensor([0.0, 0.5, 0.5, 0.0, -0.5, 0.75, -1.0, 0.75]), "qdq zp=0")
    # zp 1, grid [0, 7]: rint(t) + 1 = [1, 3, 3, 1, -1, 5, -19, 21]
    #                  -> clamp [1, 3, 3, 1, 0, 5, 0, 7]
    q = quantize(TIES_X, s, torch.tensor(1), 0, 7)
    assert_same(q, torch.tensor([1.0, 3.0, 3.0, 1.0, 0.0, 5.0, 0.0, 7.0]), "quantize zp=1")
    # y = (q - 1) * 0.25
    y = qdq(TIES_X, s, torch.tensor(1), 0, 7)
    assert_same(y, torch.tensor([0.0, 0.5, 0.5, 0.0, -0.25, 1.0, -0.25, 1.5]), "qdq zp=1")


def test_nonfinite_by_hand():
    # NaN goes to qmin as in onnxruntime (q = -8 -> (-8 - 2) * 0.5 = -5); +-Inf saturate to the
    # grid ends: q = qmax = 7 -> (7 - 2) * 0.5 = 2.5 and q = qmin = -8 -> -5.
    x = torch.tensor([math.nan, math.inf, -math.inf])
    s, zp = torch.tensor(0.5), torch.tensor(2)
    assert_same(F.quantize(x, s, zp, -8, 7), torch.tensor([-8.0, 7.0, -8.0]), "quantize")
    assert_same(F.quantize_dequantize(x, s, zp, -8, 7), torch.tensor([-5.0, 2.5, -5.0]), "qdq")
    # dequantize: (q - 2) * 0.5
    assert_same(F.dequantize(x, s, zp), torch.tensor([math.nan, math.inf, -math.inf]), "dequantize")


def test_divides_by_scale_rather_than_multiplying_by_its_reciprocal():
    # At (k + 0.5) * s and its fp32 neighbours, x / s and x * (1 / s) round differently for
    # thousands of (k, s): docs/design.md (and ONNX) fix the division.
    s = torch.exp(torch.empty(64).uniform_(-6, 0, generator=_gen(0)))
    near = (torch.arange(-300, 300, dtype=torch.float32) + 0.5)[:, None] * s
    up, down = torch.tensor(math.inf), torch.tensor(-math.inf)
    x = torch.cat([near, near.nextafter(up), near.nextafter(down)])
    by_division = torch.round(x / s) + 0.0  # + zero point 0, as the op does (-0 becomes +0)
    assert (by_division != torch.round(x * (1 / s))).sum() > 100, "too few telling inputs"
    q = F.quantize(x, s, torch.zeros(64), -32768, 32767, axis=1)
    assert_same(q, by_division, "quantize at near-ties")


# ---- the reference, bit for bit -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_ops_match_reference(layout, dtype):
    x, scale, zp, axis, block = _case(1, layout)
    x = x.to(dtype)
    q = ops.quantize(x, scale, zp, -128, 127, axis, block)
    assert_same(q, ref.quantize(x, scale, zp, -128, 127, axis, block), "quantize")
    assert_same(ops.dequantize(q, scale, zp, axis, block),
                ref.dequantize(q, scale, zp, axis, block), "dequantize")
    assert_same(ops.quantize_dequantize(x, scale, zp, -128, 127, axis, block),
                ref.quantize_dequantize(x, scale, zp, -128, 127, axis, block), "qdq")


def test_half_inputs_are_computed_in_fp32_and_rounded_once():
    # The reference for half types is ref(x.float()).to(dtype): a single rounding at the end.
    x, scale, zp, axis, block = _case(2, "axis1")
    for dtype in (torch.float16, torch.bfloat16):
        xh = x.to(dtype)
        expected = ref.quantize_dequantize(xh.float(), scale, zp, -128, 127, axis, block).to(dtype)
        assert_same(F.quantize_dequantize(xh, scale, zp, -128, 127, axis, block), expected,
                    str(dtype))


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("bitwidth", range(2, 17))
def test_every_bitwidth_and_grid(bitwidth, grid):
    qmin, qmax = F.grid_range(bitwidth, **GRIDS[grid])
    for layout in ("per-tensor", "axis1"):
        x, scale, zp, axis, block = _case(bitwidth, layout, qmin, qmax)
        q = F.quantize(x, scale, zp, qmin, qmax, axis, block)
        assert_same(q, ref.quantize(x, scale, zp, qmin, qmax, axis, block), f"quantize {layout}")
        finite = q[q.isfinite()]
        assert finite.min() == qmin and finite.max() == qmax, "data does not reach both grid ends"
        assert_same(F.quantize_dequantize(x, scale, zp, qmin, qmax, axis, block),
                    ref.quantize_dequantize(x, scale, zp, qmin, qmax, axis, block), f"qdq {layout}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_exact_ties_beyond_range_and_nonfinite(layout):
    # Power-of-two scales make x / scale exact, so positions k + 0.5 are exact ties.
    axis, block = LAYOUTS[layout]
    g = _gen(3)
    pshape = qparam_shape(SHAPE, axis, block)
    scale = 2.0 ** torch.randint(-6, 0, pshape, generator=g).float()
    zp = torch.randint(-10, 11, pshape, generator=g)
    x = grid_data(g, SHAPE, scale, zp, -8, 7, axis, block, margin=6)
    s = ref.expand_qparam(scale, SHAPE, axis, block)
    ties = (torch.round(x / s) + 0.5) * s  # exact in fp32: small integers times a power of two
    x = with_specials(torch.where(torch.rand(SHAPE, generator=g) < 0.5, ties, x))
    assert ((x / s) - torch.floor(x / s) == 0.5).sum() > 100
    for qmin, qmax in ((-8, 7), (-7, 7), (0, 15)):
        zpc = zp.clamp(qmin, qmax)
        assert_same(F.quantize(x, scale, zpc, qmin, qmax, axis, block),
                    ref.quantize(x, scale, zpc, qmin, qmax, axis, block), "quantize")
        assert_same(F.quantize_dequantize(x, scale, zpc, qmin, qmax, axis, block),
                    ref.quantize_dequantize(x, scale, zpc, qmin, qmax, axis, block), "qdq")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_quantize_then_dequantize_equals_quantize_dequantize(layout):
    x, scale, zp, axis, block = _case(4, layout)
    # fp16 holds every 8-bit grid integer exactly, so the chain loses nothing there either.
    for dtype in (torch.float32, torch.float16):
        xd = x.to(dtype)
        q = F.quantize(xd, scale, zp, -128, 127, axis, block)
        assert_same(F.dequantize(q, scale, zp, axis, block),
                    F.quantize_dequantize(xd, scale, zp, -128, 127, axis, block), str(dtype))


# ---- float_quantize_dequantize -----------------------------------------------------------------

# (fp32 value, its fp16 rounding, its bf16 rounding), with the arithmetic of each
FLOAT_EDGES = [
    (65504.0, 65504.0, 65536.0),              # largest fp16; bf16 step at 2^15 is 2^8
    (65519.99609375, 65504.0, 65536.0),       # just below the fp16 tie 65520 -> down
    (65520.0, math.inf, 65536.0),             # the tie: the even neighbour 2^16 is past fp16
    (2.0**-24, 2.0**-24, 2.0**-24),           # smallest fp16 subnormal
    (2.0**-25, 0.0, 2.0**-25),                # fp16 tie between 0 and 2^-24 -> 0 (even)
    (3 * 2.0**-25, 2.0**-23, 3 * 2.0**-25),   # fp16 tie between 2^-24 and 2^-23 -> 2^-23
    (2.0**-14 - 2.0**-25, 2.0**-14, 2.0**-14),  # fp16 tie: largest subnormal / 2^-14 -> 2^-14;
                                              # bf16: 2^-14 (1 - 2^-11) rounds up to 2^-14
    (1.0 + 2.0**-11, 1.0, 1.0),               # fp16 tie (step 2^-10) -> 1
    (1.0 + 3 * 2.0**-11, 1.0 + 2.0**-9, 1.0),  # fp16 tie -> the even 1 + 2 * 2^-10
    (1.0 + 2.0**-8, 1.0 + 2.0**-8, 1.0),      # bf16 tie (step 2^-7) -> 1
    (1.0 + 3 * 2.0**-8, 1.0 + 3 * 2.0**-8, 1.0 + 2.0**-6),  # bf16 tie -> even 1 + 2 * 2^-7
    (3.4028234663852886e38, math.inf, math.inf),  # largest fp32: past both, bf16 rounds up
    (-0.0, -0.0, -0.0),
    (-math.inf, -math.inf, -math.inf),
    (math.nan, math.nan, math.nan),
]
NARROW = {torch.float16: 1, torch.bfloat16: 2}  # column of FLOAT_EDGES


@pytest.mark.parametrize("target", NARROW, ids=str)
def test_float_quantize_dequantize_by_hand(target):
    x = torch.tensor([row[0] for row in FLOAT_EDGES])
    expected = torch.tensor([row[NARROW[target]] for row in FLOAT_EDGES])
    assert_same(F.float_quantize_dequantize(x, target), expected, str(target))


def _midpoints(target, n, gen):
    """n random exact ties of `target`: midpoints of neighbouring finite values, either sign."""
    top = int(torch.tensor(torch.finfo(target).max, dtype=target).view(torch.int16))
    bits = torch.randint(0, top, (n,), generator=gen, dtype=torch.int16)
    lo, hi = bits.view(target).float(), (bits + 1).view(target).float()
    sign = torch.randint(0, 2, (n,), generator=gen) * 2 - 1
    return (lo + hi) / 2 * sign


@pytest.mark.parametrize("target", NARROW, ids=str)
def test_float_quantize_dequantize_matches_torch_casts(target):
    # Random 32-bit words viewed as floats (every exponent, subnormals, Inf, NaN), exact ties of
    # the target format, and the hand-checked edges.
    g = _gen(5)
    bits = torch.randint(-2**31, 2**31, (1 << 16,), generator=g, dtype=torch.int64)
    x = torch.cat([bits.to(torch.int32).view(torch.float32), _midpoints(target, 1 << 14, g),
                   torch.tensor([row[0] for row in FLOAT_EDGES])])
    assert_same(F.float_quantize_dequantize(x, target), x.to(target).float(), str(target))
    assert_same(ops.float_quantize_dequantize(x, target), x.to(target).float(), "torch.ops")
    for dtype in NARROW:
        xd = x.to(dtype)
        expected = xd.float().to(target).float().to(dtype)
        assert_same(F.float_quantize_dequantize(xd, target), expected, f"{dtype} input")


# ---- memory layout and argument types ----------------------------------------------------------

def _noncontiguous(t):
    """The same values in a strided view: a transpose for 2-D and up, else every other element."""
    if t.dim() >= 2:
        return t.transpose(0, -1).contiguous().transpose(0, -1)
    return torch.stack([t, torch.full_like(t, 7)], -1)[..., 0] if t.dim() == 1 else t


@pytest.mark.parametrize("layout", LAYOUTS)
def test_noncontiguous_inputs_match_contiguous(layout):
    x, scale, zp, axis, block = _case(6, layout)
    xs, ss, zs = _noncontiguous(x), _noncontiguous(scale), _noncontiguous(zp)
    assert not xs.is_contiguous() and (scale.dim() == 0 or not ss.is_contiguous())
    args = (-128, 127, axis, block)
    for op in (ops.quantize_dequantize, ops.quantize):
        assert_same(op(xs, ss, zs, *args), op(x, scale, zp, *args), str(op))
    assert_same(ops.dequantize(xs, ss, zs, axis, block), ops.dequantize(x, scale, zp, axis, block),
                "dequantize")
    dy, zf = torch.randn(SHAPE, generator=_gen(7)), zp.float()
    for op in (ops.quantize_dequantize_backward, ops.quantize_backward):
        for got, want in zip(op(_noncontiguous(dy), xs, ss, _noncontiguous(zf), *args, True),
                             op(dy, x, scale, zf, *args, True)):
            assert_same(got, want, str(op))
    for got, want in zip(ops.dequantize_backward(_noncontiguous(dy), xs, ss, zs, axis, block, True),
                         ops.dequantize_backward(dy, x, scale, zp, axis, block, True)):
        assert_same(got, want, "dequantize_backward")
    assert_same(F.float_quantize_dequantize(xs), F.float_quantize_dequantize(x), "float qdq")


@pytest.mark.parametrize("layout", ["per-tensor", "axis-1", "block-axis1"])
def test_integer_and_floating_zero_points_agree(layout):
    x, scale, zp, axis, block = _case(8, layout, 0, 255)
    expected = F.quantize_dequantize(x, scale, zp, 0, 255, axis, block)
    for dtype in (torch.uint8, torch.int16, torch.int64, torch.float16, torch.float32,
                  torch.float64):
        assert_same(F.quantize_dequantize(x, scale, zp.to(dtype), 0, 255, axis, block), expected,
                    str(dtype))
        assert_same(F.dequantize(x, scale, zp.to(dtype), axis, block),
                    F.dequantize(x, scale, zp, axis, block), f"dequantize {dtype}")


def test_functional_accepts_numbers_and_equals_torch_ops():
    x, scale, zp, _, _ = _case(9, "per-tensor")
    s, z = scale.item(), int(zp)
    assert_same(F.quantize_dequantize(x, s, z, -128, 127),
                ops.quantize_dequantize(x, scale, zp, -128, 127), "quantize_dequantize")
    q = F.quantize(x, s, z, -128, 127)
    assert_same(q, ops.quantize(x, scale, zp, -128, 127), "quantize")
    assert_same(F.dequantize(q, s, z), ops.dequantize(q, scale, zp), "dequantize")


def test_reference_docstring_examples():
    # The examples of the reference are the hand-computed answers its docs promise (the package's
    # own examples run in test_docstrings.py).
    result = doctest.testmod(ref, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0, result


# --- Python numbers as qparams (issue 14 item 4) ---------------------------------------------

@pytest.mark.parametrize("zp", [0.5, 2.7, -3.9, float("nan"), float("inf")])
def test_fractional_python_zero_point_is_refused_not_truncated(zp):
    x = torch.tensor([0.3, -0.7, 1.9])
    for call in (lambda: F.quantize_dequantize(x, 0.5, zp, -8, 7),
                 lambda: F.quantize(x, 0.5, zp, -8, 7),
                 lambda: F.dequantize(x, 0.5, zp)):
        with pytest.raises(ValueError, match="zero_point must be an integer"):
            call()


def test_integral_python_zero_point_equals_the_tensor_one():
    x = torch.linspace(-3, 3, 25)
    want = F.quantize_dequantize(x, torch.tensor(0.25), torch.tensor(3), -8, 7)
    assert torch.equal(F.quantize_dequantize(x, 0.25, 3.0, -8, 7), want)
    assert torch.equal(F.quantize_dequantize(x, 0.25, 3, -8, 7), want)


@pytest.mark.parametrize("zp, error, match", [
    (2**40, ValueError, "zero_point must be an integer within the grid"),
    ("3", TypeError, "zero_point must be a tensor or an integer, got str"),
    (True, TypeError, "zero_point must be a tensor or an integer, got bool"),
])
def test_bad_python_zero_point_names_the_argument(zp, error, match):
    with pytest.raises(error, match=match):
        F.quantize_dequantize(torch.randn(3), 0.5, zp, -8, 7)


@pytest.mark.parametrize("scale", ["0.5", None, [0.5]])
def test_scale_of_a_wrong_type_names_the_argument(scale):
    with pytest.raises(TypeError, match="scale must be a tensor or a real number"):
        F.quantize_dequantize(torch.randn(3), scale, 0, -8, 7)
