"""`torch.library.opcheck` on every op of the qdq family in the `qsim` namespace (and the grid's
`zero_point`, whose fake implementation lives with theirs).

opcheck runs each op and checks its schema (no hidden mutation or aliasing), the fake
implementation against the real one (shapes, dtypes, strides: hence the strided-input cases),
the autograd registration, and AOT dispatch (torch.compile's tracing) with dynamic shapes,
forward and backward.

The `*_backward_data` ops (the data gradient alone, what autograd calls without qparam
gradients) are also checked against the `*_backward` ops' first output, bit for bit, and the
layout tags that let torch.compile run the element-wise ops in inductor's layout are checked.

The backward ops are called without requires_grad: they have no autograd formula of their own
(no double backward), and opcheck rightly fails an op that sees requires_grad inputs then.
"""

import os

import pytest
import torch
from torch._library.simple_registry import singleton
from torch.library import opcheck

import torchqsim  # noqa: F401  (registers the ops)
from torchqsim.quantization.grid import GridKind
from asserts import assert_same
from qdq_cases import LAYOUTS, grid_data, make_qparams, with_specials

ops = torch.ops.qsim
QDQ_OPS = ("quantize_dequantize", "quantize", "dequantize")
SHAPES = {"1d": (48,), "3d": (4, 6, 20), "4d": (2, 4, 3, 8)}
# (shape, layout): every granularity on the 3-D shape, and a few on the others (blockwise needs
# the axis length to divide).
CASES = [("3d", "per-tensor"), ("3d", "axis1"), ("3d", "axis-1"), ("3d", "block-axis1"),
         ("3d", "block-axis-1"), ("1d", "per-tensor"), ("4d", "axis0"), ("4d", "block-axis0")]
# which of (x, scale, zero_point) require grad; a zero point that does is floating
GRAD_CASES = {"none": (), "x": ("x",), "all": ("x", "scale", "zero_point")}


def _inputs(shape_name, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = SHAPES[shape_name]
    axis, block = LAYOUTS[layout]
    scale, zp = make_qparams(g, shape, axis, block, -128, 127)
    x = grid_data(g, shape, scale, zp, -128, 127, axis, block)
    return x, scale, zp, axis, block, g


def _op_args(op, x, scale, zp, axis, block):
    if op == "dequantize":
        return (torch.round(x / 0.05).clamp(-128, 127), scale, zp, axis, block)
    return (x, scale, zp, -128, 127, axis, block)


@pytest.mark.parametrize("grads", GRAD_CASES)
@pytest.mark.parametrize("shape_name,layout", CASES)
@pytest.mark.parametrize("op", QDQ_OPS)
def test_opcheck_forward_ops(op, shape_name, layout, grads):
    x, scale, zp, axis, block, _ = _inputs(shape_name, layout)
    if "zero_point" in GRAD_CASES[grads]:
        zp = zp.float()  # a learned zero point is floating
    args = list(_op_args(op, x, scale, zp, axis, block))
    for i, name in enumerate(("x", "scale", "zero_point")):
        if name in GRAD_CASES[grads]:
            args[i] = args[i].clone().requires_grad_()
    opcheck(getattr(ops, op), tuple(args))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", QDQ_OPS)
def test_opcheck_forward_ops_half_inputs(op, dtype):
    x, scale, zp, axis, block, _ = _inputs("3d", "axis1")
    args = _op_args(op, x.to(dtype).requires_grad_(), scale, zp, axis, block)
    opcheck(getattr(ops, op), args)


# How autograd calls them: STE only (integer zero point), or with the range-learning gradients.
@pytest.mark.parametrize("zp_dtype,qparam_grads", [(torch.int32, False), (torch.float32, True)],
                         ids=["ste", "range-learning"])
@pytest.mark.parametrize("shape_name,layout", CASES)
@pytest.mark.parametrize("op", QDQ_OPS)
def test_opcheck_backward_ops(op, shape_name, layout, zp_dtype, qparam_grads):
    x, scale, zp, axis, block, g = _inputs(shape_name, layout)
    fwd = _op_args(op, x, scale, zp.to(zp_dtype), axis, block)
    grad = torch.randn(x.shape, generator=g)
    opcheck(getattr(ops, f"{op}_backward"), (grad, *fwd, qparam_grads))


def _check_backward_data(op, grad, fwd):
    """opcheck of `{op}_backward_data` on (grad, *fwd), and its result against the first output
    of `{op}_backward` without qparam gradients, bit for bit."""
    opcheck(getattr(ops, f"{op}_backward_data"), (grad, *fwd))
    assert_same(getattr(ops, f"{op}_backward_data")(grad, *fwd),
                getattr(ops, f"{op}_backward")(grad, *fwd, False)[0], f"{op}_backward_data")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape_name,layout", CASES)
@pytest.mark.parametrize("op", QDQ_OPS)
def test_opcheck_backward_data_ops(op, shape_name, layout, dtype):
    x, scale, zp, axis, block, g = _inputs(shape_name, layout)
    # special values (NaN, infinities, ties, clamped ends) in the data
    fwd = _op_args(op, with_specials(x).to(dtype), scale, zp, axis, block)
    _check_backward_data(op, torch.randn(x.shape, generator=g).to(dtype), fwd)


def test_layout_tags():
    # Element-wise ops run in whatever layout inductor chose (no copies around them); the
    # range-learning backward ops, whose sums run in memory order, keep the eager trace's strides.
    flexible = torch.Tag.flexible_layout
    layout_tags = {flexible, torch.Tag.needs_fixed_stride_order, torch.Tag.needs_exact_strides,
                   torch.Tag.needs_contiguous_strides}
    for name in (*QDQ_OPS, *(f"{op}_backward_data" for op in QDQ_OPS),
                 "float_quantize_dequantize"):
        assert flexible in getattr(ops, name).default.tags, name
    for name in (*(f"{op}_backward" for op in QDQ_OPS), "quantize_dequantize_backward_"):
        assert not layout_tags & set(getattr(ops, name).default.tags), name


@pytest.mark.parametrize("zp_dtype,qparam_grads", [(torch.int32, False), (torch.float32, True)],
                         ids=["ste", "range-learning"])
@pytest.mark.parametrize("shape_name,layout", CASES)
def test_opcheck_backward_into_grad(shape_name, layout, zp_dtype, qparam_grads):
    x, scale, zp, axis, block, g = _inputs(shape_name, layout)
    fwd = _op_args("quantize_dequantize", x, scale, zp.to(zp_dtype), axis, block)
    grad = torch.randn(x.shape, generator=g)
    opcheck(ops.quantize_dequantize_backward_, (grad, *fwd, qparam_grads))


@pytest.mark.parametrize("target", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape_name", ["1d", "4d"])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck_float_quantize_dequantize(shape_name, target, requires_grad):
    x = torch.randn(SHAPES[shape_name], generator=torch.Generator().manual_seed(1)) * 1e3
    opcheck(ops.float_quantize_dequantize, (x.requires_grad_(requires_grad), target))


def _strided(t):
    """The same values with reversed strides (a non-contiguous, dense layout) from 2-D up."""
    if t.dim() < 2:
        return t
    return t.permute(*reversed(range(t.dim()))).contiguous().permute(*reversed(range(t.dim())))


# Non-contiguous inputs: a dense one (reversed strides here) is processed in its memory order and
# its outputs get its strides (torch.empty_like), which the fake implementations must reproduce
# (torch.compile asserts them); qparam gradients are contiguous whatever the qparams' strides.
@pytest.mark.parametrize("layout", ["per-tensor", "axis1", "block-axis-1"])
@pytest.mark.parametrize("op", QDQ_OPS)
def test_opcheck_strided_inputs(op, layout):
    x, scale, zp, axis, block, g = _inputs("3d", layout)
    zp = zp.float()
    fwd = [_strided(t) for t in _op_args(op, x, scale, zp, axis, block)[:3]]
    rest = _op_args(op, x, scale, zp, axis, block)[3:]
    assert not fwd[0].is_contiguous()
    opcheck(getattr(ops, op), (*(t.clone().requires_grad_() for t in fwd), *rest))
    grad = _strided(torch.randn(x.shape, generator=g))
    opcheck(getattr(ops, f"{op}_backward"), (grad, *fwd, *rest, True))
    _check_backward_data(op, grad, (*fwd, *rest))
    opcheck(ops.float_quantize_dequantize, (fwd[0], torch.bfloat16))


def _channels_last(t):
    return t.contiguous(memory_format=torch.channels_last)


# Channels-last activations (axis 1 of NHWC memory) and a sliced (non-dense) input, which the
# kernels copy dense in the same dim order.
@pytest.mark.parametrize("layout", ["per-tensor", "axis1", "block-axis0"])
@pytest.mark.parametrize("make", [_channels_last, lambda t: t[:, :, :, ::2]],
                         ids=["channels_last", "sliced"])
def test_opcheck_channels_last_and_sliced_inputs(layout, make):
    x, scale, zp, axis, block, g = _inputs("4d", layout)
    grad = make(torch.randn((*x.shape[:-1], 2 * x.shape[-1]), generator=g))
    x = make(torch.cat([x, x], -1))
    scale, zp = (make(torch.cat([t, t], -1)) if block else t for t in (scale, zp))
    zp = zp.float()
    fwd = (x, scale, zp, -128, 127, axis, block)
    opcheck(ops.quantize_dequantize, (x.clone().requires_grad_(), scale.clone().requires_grad_(),
                                      zp.clone().requires_grad_(), *fwd[3:]))
    opcheck(ops.quantize_dequantize_backward, (grad, *fwd, True))
    _check_backward_data("quantize_dequantize", grad, fwd)


@pytest.mark.parametrize("out_kind", ["fresh", "in-place", "channels_last", "float16"])
@pytest.mark.parametrize("layout", ["per-tensor", "axis1", "block-axis0"])
def test_opcheck_quantize_dequantize_out(layout, out_kind):
    x, scale, zp, axis, block, _ = _inputs("4d", layout)
    if out_kind == "float16":
        x = x.half()
    if out_kind == "channels_last":
        x = _channels_last(x)
    out = x if out_kind == "in-place" else torch.empty_like(x)
    opcheck(ops.quantize_dequantize_out, (x, scale, zp, -128, 127, axis, block, out))


@pytest.mark.parametrize("kind", list(GridKind))
@pytest.mark.parametrize("shape,grads", [((), True), ((5,), True), ((3, 4), True), ((3, 4), False)])
def test_opcheck_zero_point(kind, shape, grads):
    g = torch.Generator().manual_seed(3)
    lo = -torch.rand(shape, generator=g) * 3 + 0.5
    scale = (torch.rand(shape, generator=g) + 0.1) / 15
    opcheck(ops.zero_point, (lo.requires_grad_(grads), scale.requires_grad_(grads), 4, int(kind)))


def test_every_op_registered_by_torchqsim_ops_is_checked():
    # The qsim ops whose fake implementation lives in wrappers/ops.py (torchqsim.ops) are this
    # family; a new one must join the tests above. The calibration ops (torchqsim._stats_ops)
    # have their own opcheck tests, and so have the range-learning ops
    # (tests/python/quantization/test_range_learning_op.py; held_range in test_held_range_op.py)
    # and the in-place training ops (tests/python/ops/test_qdq_inplace.py), and the compiled
    # weight cache's op (tests/python/quantization/test_compiled_weight_cache.py).
    names = [n for n in torch._C._dispatch_get_all_op_names() if n.startswith("qsim::")]
    sources = {n: singleton.find(n).fake_impl.kernel.source for n in names}
    family = {n.split("::")[1] for n, src in sources.items()
              if os.path.basename(src.rsplit(":", 1)[0]) == "ops.py"}
    checked = {*QDQ_OPS, *(f"{op}_backward" for op in QDQ_OPS),
               *(f"{op}_backward_data" for op in QDQ_OPS), "float_quantize_dequantize",
               "quantize_dequantize_out", "quantize_dequantize_backward_", "zero_point",
               "quantize_dequantize_", "quantize_dequantize_clamped_",  # test_qdq_inplace.py
               # test_traced_bits.py:
               "quantize_dequantize_bits", "quantize_dequantize_bits_backward",
               "quantize_dequantize_bits_backward_",
               "range_qparams", "range_grads", "quantize_dequantize_range", "held_range",
               "cached_quantize_dequantize_"}
    assert family == checked, f"qdq ops {sorted(family)} != checked {sorted(checked)}"
