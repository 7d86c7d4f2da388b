"""A quantizer that ``torch.compile`` traces without gradients computes its zero point and, per
channel or on a small x, its qdq as pointwise torch operations that inductor fuses, and per
tensor on a larger x runs the in-place op on a copy (wrappers/quantization/pointwise_qdq.py).

Oracles: the eager quantizer (the C kernels, tested against the formula elsewhere), bit for bit,
signed zeros included, on values at every grid's ties, ends and beyond, NaN, infinities and
subnormals; torch's profiler for which ops a compiled call runs. Inductor's caches are off.
"""

import pytest
import torch
from torch import nn

from asserts import assert_same
from ops_run import no_compile_caches, qsim_ops
from qdq_cases import with_specials
from torchqsim.quantization import QuantizeDequantize
from torchqsim.quantization.grid import GridKind
from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize
from torchqsim.quantization.pointwise_qdq import PlannedQdq, pointwise_qdq

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]

# (encoding shape, input shape): per tensor, per channel on the first and on the last axis
LAYOUTS = [((), (6, 40)), ((6, 1), (6, 40)), ((40,), (6, 40))]
GRIDS = [(8, GridKind.ASYMMETRIC), (8, GridKind.SYMMETRIC), (8, GridKind.STRICT_SYMMETRIC),
         (8, GridKind.UNSIGNED_SYMMETRIC), (4, GridKind.ASYMMETRIC), (16, GridKind.ASYMMETRIC),
         (16, GridKind.SYMMETRIC)]


class _Quantizers(nn.Module):
    """One quantizer per (grid, layout), each applied to its own input."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.qs = nn.ModuleList()
        for bits, kind in GRIDS:
            for shape, _ in LAYOUTS:
                q = QuantizeDequantize(shape, bits, symmetric=kind is not GridKind.ASYMMETRIC,
                                       strict=kind is GridKind.STRICT_SYMMETRIC,
                                       unsigned=kind is GridKind.UNSIGNED_SYMMETRIC)
                assert q.grid.kind is kind
                lo = -torch.rand(shape, generator=g) * 3 - 0.01
                hi = torch.rand(shape, generator=g) * 2 + 0.01
                if kind is GridKind.UNSIGNED_SYMMETRIC:  # some channels all positive: zp 0
                    lo = torch.where(torch.rand(shape, generator=g) < 0.5, lo, hi / 4)
                q.set_range(lo, hi)
                self.qs.append(q)

    def forward(self, xs):
        return [q(x) for q, x in zip(self.qs, xs)]


def _inputs(model, dtype, seed=1):
    """Per quantizer: values at every half step of its grid (ties), its ends and beyond, negative
    values that round to zero, and the specials (NaN, +-inf, +-0, 1e30, a subnormal)."""
    g = torch.Generator().manual_seed(seed)
    xs = []
    for q, (_, x_shape) in zip(model.qs, LAYOUTS * len(GRIDS)):
        scale = q.get_scale().detach()
        steps = torch.randint(q.qmin - 3, q.qmax + 4, x_shape, generator=g).float()
        half = torch.where(torch.rand(x_shape, generator=g) < 0.5, 0.5, 0.0)
        zp = q.get_zero_point().detach()
        x = (steps - zp + half) * scale
        x[0, :4] = -scale.flatten()[:1] * 0.3  # rounds to -0.0 before the zero point
        xs.append(with_specials(x).to(dtype))
    return xs


@pytest.mark.parametrize("small_fused", [True, False], ids=["small x fused", "small x by op"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@no_compile_caches
def test_compiled_no_grad_quantizers_equal_eager_bit_for_bit(dtype, small_fused):
    # the inputs hold 240 values: float32 at most compiled_pointwise_max_numel, so all fused; with
    # the limit at 0, and in 16 bits, per tensor by the in-place op
    torch._dynamo.reset()
    model = _Quantizers()
    for q in model.qs:
        assert q.compiled_pointwise_max_numel >= 240
        if not small_fused:
            q.compiled_pointwise_max_numel = 0
    xs = _inputs(model, dtype)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        want = model(xs)
        got = compiled(xs)
        for i, (a, b) in enumerate(zip(got, want)):
            bits, kind = GRIDS[i // len(LAYOUTS)]
            assert_same(a, b, f"{kind.name} {bits}-bit, encoding shape {LAYOUTS[i % 3][0]}")
        # per channel fused (16-bit: the op); per tensor fused too, or the in-place op on
        # inductor's copy; no zero_point op
        ran = set(qsim_ops(lambda: compiled(xs)))
        fused = small_fused and dtype == torch.float32
        want_ops = (set() if fused else {"qsim::quantize_dequantize_"}) | \
            (set() if dtype == torch.float32 else {"qsim::quantize_dequantize"})
        assert ran == want_ops, ran


def _straight_through(q, x, w, compiled):
    """y and the straight-through gradient of x through `q` (compiled or eager), weighted by w."""
    xg = x.clone().requires_grad_()
    y = (q if compiled is None else compiled)(xg * 2.0)
    (y * w).nansum().backward()
    return y.detach(), xg.grad


# (encoding shape, x shape, compiled_in_place_dims): per tensor, then per channel
_STRAIGHT_THROUGH = [((), (64, 32), 3), ((), (2, 3, 8, 32), 4), ((), (2, 3, 8, 32), 3),
                     ((), (4, 6, 2, 2, 8), 4), ((64, 1), (64, 32), 3), ((32,), (64, 32), 3),
                     ((1, 3, 1), (2, 3, 32), 3), ((1, 3, 1, 1), (2, 3, 8, 32), 4),
                     ((1, 3, 1, 1), (2, 3, 8, 32), 3)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("enc, shape, dims", _STRAIGHT_THROUGH)
@no_compile_caches
def test_compiled_straight_through_writes_planned_buffers(dtype, enc, shape, dims):
    # x of at most compiled_in_place_dims dims: per tensor the in-place op on a copy, whose traced
    # node keeps the bits (its backward also in place, on a copy of the gradient); per channel y
    # into an empty tensor (quantize_dequantize_out) and dx into a copy of the gradient
    # (quantize_dequantize_backward_). Larger x keeps x's op, which takes inductor's layout. The
    # eager bits either way.
    torch._dynamo.reset()
    q = QuantizeDequantize(enc, 8, symmetric=False)
    g = torch.Generator().manual_seed(5)
    q.set_range(-torch.rand(enc, generator=g) - 0.1, torch.rand(enc, generator=g) + 0.1)
    q.requires_grad_(False)  # straight-through: x alone gets a gradient
    q.compiled_in_place_dims = dims
    x = with_specials(torch.randn(shape, generator=g) * 2).to(dtype)
    w = torch.randn(shape, generator=g).to(dtype)
    compiled = torch.compile(q, fullgraph=True)
    want_y, want_dx = _straight_through(q, x, w, None)
    got_y, got_dx = _straight_through(q, x, w, compiled)
    assert_same(got_y, want_y, "y")
    assert_same(got_dx, want_dx, "straight-through gradient")
    ran = set(qsim_ops(lambda: _straight_through(q, x, w, compiled)))
    if len(shape) > dims:
        assert ran == {"qsim::quantize_dequantize", "qsim::quantize_dequantize_backward_data"}, ran
    elif enc == ():
        assert ran == {"qsim::quantize_dequantize_clamped_",
                       "qsim::quantize_dequantize_bits_backward_"}, ran
    else:
        assert ran == {"qsim::quantize_dequantize_out", "qsim::quantize_dequantize_backward_"}, ran


@pytest.mark.parametrize("transposed", [False, True])
def test_planned_qdq_is_the_ops_value_and_gradient(transposed):
    # eager, on a contiguous and a transposed x (y and dx laid out like x)
    g = torch.Generator().manual_seed(6)
    x = with_specials(torch.randn(40, 6, generator=g) * 3)
    x = x.t() if transposed else x.t().contiguous()
    scale, zp = torch.rand(6, generator=g) * 0.1 + 0.01, torch.randint(-5, 5, (6,)).float()
    dy = torch.randn(x.shape, generator=g)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    want = torch.ops.qsim.quantize_dequantize(xa, scale, zp, -128, 127, 0)
    got = PlannedQdq.apply(xb, scale, zp, -128, 127, 0)
    want.backward(dy)
    got.backward(dy)
    assert_same(got.detach(), want.detach(), "y")
    assert_same(xb.grad, xa.grad, "dx")
    assert got.stride() == x.stride() and xb.grad.stride() == x.stride()


@no_compile_caches
def test_a_learned_range_keeps_its_op():
    torch._dynamo.reset()
    q = QuantizeDequantize((), 8, symmetric=False)
    q.set_range(-1.0, 1.0)
    compiled = torch.compile(q, fullgraph=True)
    ran = set(qsim_ops(lambda: compiled(torch.randn(6, 40).requires_grad_()).sum().backward()))
    assert "qsim::quantize_dequantize_range" in ran and \
        "qsim::quantize_dequantize_clamped_" not in ran, ran


class _Produced(nn.Module):
    """A quantizer of encoding shape `shape` (16-bit grid) of ``a * b + c``."""

    def __init__(self, shape):
        super().__init__()
        self.q = QuantizeDequantize(shape, 16, symmetric=False)
        self.q.set_range(torch.full(shape, -3.0), torch.full(shape, 5.0))

    def forward(self, a, b, c):
        return self.q(_produce(a, b, c))


def _produce(a, b, c):
    return a * b + c


# (encoding shape, x shape, the op a 16-bit x takes): small per tensor (the in-place op on a
# copy), per channel and conv-shaped (the op)
_PRODUCED = [((), (4, 96), "qsim::quantize_dequantize_"),
             ((96,), (4, 96), "qsim::quantize_dequantize"),
             ((), (2, 8, 6, 6), "qsim::quantize_dequantize")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("enc, shape, op", _PRODUCED, ids=["small", "per-channel", "conv-shaped"])
@no_compile_caches
def test_a_produced_tensor_is_fused_in_float32_only(dtype, enc, shape, op):
    # fused into its producer's kernel, a 16-bit x would be quantized before its rounding to 16
    # bits (inductor keeps float32 within a kernel; 10-30 of these values differed): those keep
    # the op. Oracle: the eager quantizer on the compiled producer's output (in 16 bits not
    # eager's: a * b is not rounded)
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(8)
    a, b, c = (torch.randn(shape, generator=g).to(dtype) for _ in range(3))
    model = _Produced(enc)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        want = model.q(torch.compile(_produce, fullgraph=True)(a, b, c))
        assert_same(compiled(a, b, c), want, f"{dtype} q(a * b + c)")
        ran = qsim_ops(lambda: compiled(a, b, c))
    assert ran == ([] if dtype == torch.float32 else [op]), ran


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@no_compile_caches
def test_a_stored_16_bit_weight_stays_fused(dtype):
    # a parameter is read as stored, rounded: its per-channel qdq stays pointwise (no op call)
    torch._dynamo.reset()
    lin = nn.Linear(40, 6, bias=False).to(dtype)
    q = ParamQuantizeDequantize((6, 1), 8, symmetric=True)
    q.set_range(-lin.weight.detach().float().abs().amax(1, keepdim=True),
                lin.weight.detach().float().abs().amax(1, keepdim=True))
    q.eval().cache_eval_output = False

    def forward(x):
        return nn.functional.linear(x, q(lin.weight))
    compiled = torch.compile(forward, fullgraph=True)
    x = torch.randn(3, 40).to(dtype)
    with torch.no_grad():
        assert_same(compiled(x), forward(x))
        assert qsim_ops(lambda: compiled(x)) == []


@no_compile_caches
def test_a_conv_shaped_tensor_is_fused_too():
    # 4-D and wider (inductor may lay them out channels-last): pointwise, no op at all
    torch._dynamo.reset()
    q = QuantizeDequantize((), 8, symmetric=False)
    q.set_range(-1.0, 2.0)
    x = with_specials(torch.randn(2, 3, 4, 5) * 2)
    compiled = torch.compile(q, fullgraph=True)
    with torch.no_grad():
        assert_same(compiled(x), q(x), "4-D y")
        assert qsim_ops(lambda: compiled(x)) == []


@no_compile_caches
def test_compiled_uninitialized_quantizer_fails_by_name():
    torch._dynamo.reset()
    q = QuantizeDequantize((), 8, symmetric=False)
    q.name = "block.act"
    with torch.no_grad(), pytest.raises(RuntimeError,
                                        match="'block.act': scale must be finite and > 0"):
        torch.compile(q, fullgraph=True)(torch.randn(4))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
@no_compile_caches
def test_a_bad_scale_raises_in_the_fused_kernel(bad):
    torch._dynamo.reset()
    fn = torch.compile(lambda x, s: pointwise_qdq(x, s, torch.zeros(3), 0, 255, 0, "q"),
                       fullgraph=True)
    x = torch.randn(3, 5)
    assert_same(fn(x, torch.full((3,), 0.1)),
                torch.ops.qsim.quantize_dequantize(x, torch.full((3,), 0.1), torch.zeros(3), 0,
                                                   255, 0), "per-channel y")
    with pytest.raises(RuntimeError, match="q: scale must be finite and > 0"):
        fn(x, torch.tensor([0.1, bad, 0.1]))
