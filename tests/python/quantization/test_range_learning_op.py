"""Range learning in one autograd node: ``torch.ops.qsim.quantize_dequantize_range`` and the
`QuantizeDequantize` path that takes it (``torchqsim.quantization.range_learning``: plain eager,
CPU, fp32 min/max, no blocks).

Oracle: the same quantizer with that path switched off, which computes the torch expressions
(``get_scale`` twice, the ``zero_point`` op, the qdq op: ten autograd nodes); forward and every
gradient must be the same bits (signed zeros included), over every grid kind, per tensor and per
channel on several axes, fp32 / fp16 / bf16 data with NaN, +-Inf and clipped values, a quantizer
shared by two call sites, gradients accumulated over steps, a gradient the backward does not
own, and a permuted view's gradient (copied once, into x's layout). Also: opcheck of the three
ops, and errors that name the argument.
"""

import math

import pytest
import torch
from torch.library import opcheck

from asserts import assert_same, big_copies
from ops_run import no_compile_caches, qsim_ops
from torchqsim.quantization import QuantizeDequantize
from torchqsim.quantization import quantizer as quantizer_module
from torchqsim.quantization.grid import GridKind

ops = torch.ops.qsim

_KINDS = {  # grid kind -> QuantizeDequantize keywords
    GridKind.ASYMMETRIC: dict(symmetric=False),
    GridKind.SYMMETRIC: dict(symmetric=True),
    GridKind.STRICT_SYMMETRIC: dict(symmetric=True, strict=True),
    GridKind.UNSIGNED_SYMMETRIC: dict(symmetric=True, unsigned=True),
}
# (x shape, encoding shape): per tensor, per channel on axes 0, 1 and the last.
_LAYOUTS = [((6, 40), ()), ((6, 40), (6, 1)), ((3, 6, 5, 5), (6, 1, 1)), ((4, 6, 9), (9,))]


def _data(gen, shape, dtype):
    x = torch.randn(shape, generator=gen) * 3
    flat = x.view(-1)
    picks = torch.randint(0, flat.numel(), (4,), generator=gen)
    flat[picks[0]], flat[picks[1]], flat[picks[2]], flat[picks[3]] = math.nan, math.inf, -math.inf, -0.0
    return x.to(dtype)


def _quantizer(gen, kind, bitwidth, shape, x):
    q = QuantizeDequantize(shape, bitwidth, **_KINDS[kind])
    with q.compute_encodings():
        q(x.float().nan_to_num(0.0, 1.0, -1.0) * 0.6)  # clips the tails
    with torch.no_grad():  # off-grid ranges: min / scale is not an integer
        q.min.sub_(torch.rand(q.min.shape, generator=gen))
        q.max.add_(torch.rand(q.max.shape, generator=gen))
    return q


def _run(q, fused, monkeypatch, step):
    """step(q) under the fused path or the torch expressions; returns its tensors and grads."""
    with monkeypatch.context() as m:
        if not fused:
            m.setattr(quantizer_module, "range_qdq", lambda q, x: None)
        q.zero_grad()
        outs = step(q)
    return [*outs, q.min.grad, q.max.grad]


def _compare(q, monkeypatch, step, what):
    fused, ref = _run(q, True, monkeypatch, step), _run(q, False, monkeypatch, step)
    for i, (a, b) in enumerate(zip(fused, ref)):
        assert (a is None) == (b is None), f"{what}: output {i} None on one side only"
        if a is not None:
            assert_same(a, b, f"{what}: output {i}")


def _step(x, upstream):
    def step(q):
        xi = x.clone().requires_grad_()
        y = q(xi)
        assert "RangeQdq" in y.grad_fn.name() or "Affine" in y.grad_fn.name()
        (y * upstream).sum().backward()
        return y.detach(), xi.grad
    return step


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("x_shape,shape", _LAYOUTS)
@pytest.mark.parametrize("kind", list(_KINDS))
def test_forward_and_gradients_are_the_torch_expressions_bit_for_bit(kind, x_shape, shape, dtype,
                                                                    monkeypatch):
    gen = torch.Generator().manual_seed(hash((kind, x_shape, str(dtype))) % 2**31)
    for trial, bitwidth in enumerate((4, 8, 16)):
        x = _data(gen, x_shape, dtype)
        q = _quantizer(gen, kind, bitwidth, shape, x)
        upstream = torch.randn(x_shape, generator=gen).to(dtype)
        _compare(q, monkeypatch, _step(x, upstream), f"{kind.name} {bitwidth} bits")


def test_the_fused_node_is_the_one_recorded():
    q = _quantizer(torch.Generator().manual_seed(1), GridKind.ASYMMETRIC, 8, (6, 1),
                   torch.randn(6, 40))
    assert "RangeQdqFunction" in q(torch.randn(6, 40)).grad_fn.name()
    q.min.requires_grad_(False)  # max alone learned: still the fused node
    assert "RangeQdqFunction" in q(torch.randn(6, 40)).grad_fn.name()
    q.max.requires_grad_(False)  # nothing learned: the qdq op's own node
    assert "RangeQdqFunction" not in q(torch.randn(6, 40).requires_grad_()).grad_fn.name()


def test_shared_quantizer_accumulated_steps_and_partly_frozen_range(monkeypatch):
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(6, 40, generator=gen), torch.randn(6, 40, generator=gen) * 2
    q = _quantizer(gen, GridKind.ASYMMETRIC, 8, (6, 1), a)

    def two_sites_two_steps(q):
        for _ in range(2):  # .grad accumulates over the steps
            ((q(a) * b).sum() + (q(b * a) ** 2).sum()).backward()
        return []

    _compare(q, monkeypatch, two_sites_two_steps, "shared, two steps")
    q.min.requires_grad_(False)
    _compare(q, monkeypatch, lambda q: (q(a) * b).sum().backward() or [], "min frozen")


def test_gradient_not_owned_by_the_backward(monkeypatch):
    # torch.autograd.grad with a grad_outputs the caller holds: dx cannot be written into it.
    gen = torch.Generator().manual_seed(3)
    x, upstream = torch.randn(6, 40, generator=gen), torch.randn(6, 40, generator=gen)
    q = _quantizer(gen, GridKind.ASYMMETRIC, 8, (), x)
    kept = upstream.clone()

    def step(q):
        xi = x.clone().requires_grad_()
        return list(torch.autograd.grad(q(xi), [xi, q.min, q.max], upstream))

    _compare(q, monkeypatch, step, "grad_outputs held")
    assert_same(upstream, kept, "grad_outputs")


@pytest.mark.parametrize("learned", [True, False])
@pytest.mark.parametrize("shape", [(), (4, 1, 1)])
def test_permuted_view_gradient_is_copied_once_into_x_layout(shape, learned, monkeypatch):
    # Attention's x: a [B, S, H, D] tensor seen as [B, H, S, D]. The incoming gradient is
    # contiguous; the kernels run in x's memory order, so dx is one copy of it laid out like x
    # (not a copy into that order and dx copied back). learned=False: min and max frozen, the
    # qdq op's own node (straight-through for x, the torch expressions' path).
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(2, 6, 4, 16, generator=gen)
    upstream = torch.randn(2, 4, 6, 16, generator=gen)
    q = _quantizer(gen, GridKind.ASYMMETRIC, 8, shape, base.transpose(1, 2))
    q.requires_grad_(learned)
    seen = []

    def step(q):
        leaf = base.clone().requires_grad_()
        x = leaf.transpose(1, 2)
        x.register_hook(lambda g: seen.append(g.stride()))
        (q(x) * upstream).sum().backward()
        return [leaf.grad]

    _compare(q, monkeypatch, step, f"permuted x, learned {learned}")
    x = base.transpose(1, 2)
    assert seen and all(s == x.stride() for s in seen), (seen, x.stride())
    copies = [c for c in big_copies(lambda: step(q), x.numel()) if c[1][0] == list(x.shape)]
    assert len(copies) == 1, copies  # (the clone copies base's shape)
    # create_graph: a gradient on a graph is not copied for the in-place backward; same gradient
    leaf = base.clone().requires_grad_()
    (dx,) = torch.autograd.grad((q(leaf.transpose(1, 2)) * upstream).sum(), leaf, create_graph=True)
    assert_same(dx.detach(), step(q)[0], "create_graph")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("x_shape,shape", [_LAYOUTS[0], _LAYOUTS[2]])
@pytest.mark.parametrize("in_place_dims", [3, 4])
@no_compile_caches
def test_compiled_calls_take_the_node_with_the_same_bits(x_shape, shape, dtype, in_place_dims,
                                                         monkeypatch):
    # Compiled, AOTAutograd traces the node into range_qparams + the qdq op and the qdq backward +
    # range_grads; where x has at most compiled_in_place_dims dims, the qdq op writes into an
    # empty tensor (out=) and the backward into a copy of the gradient. Oracles: the eager node,
    # and the compiled torch expressions (range_qdq off).
    gen = torch.Generator().manual_seed(4)
    x = _data(gen, x_shape, dtype)
    q = _quantizer(gen, GridKind.ASYMMETRIC, 8, shape, x)
    q.compiled_in_place_dims = in_place_dims
    upstream = torch.randn(x_shape, generator=gen).to(dtype)

    def compiled_step(q):
        torch._dynamo.reset()  # (range_qdq may be patched: no graph from another run)
        forward = torch.compile(lambda xi: q(xi) * upstream, backend="inductor", fullgraph=True)
        xi = x.clone().requires_grad_()
        y = forward(xi)
        y.sum().backward()
        return y.detach(), xi.grad

    eager = _run(q, True, monkeypatch, _step(x, upstream))
    fused = _run(q, True, monkeypatch, compiled_step)
    expressions = _run(q, False, monkeypatch, compiled_step)
    for i, (a, b, c) in enumerate(zip(fused, eager, expressions)):
        assert_same(a, b * upstream if i == 0 else b, f"compiled against eager: output {i}")
        assert_same(a, c, f"compiled node against compiled expressions: output {i}")
    ran = set(qsim_ops(lambda: compiled_step(q)))  # (tracing runs the node's fake kernel too)
    planned = {"qsim::quantize_dequantize_out", "qsim::quantize_dequantize_backward_"}
    allocating = {"qsim::quantize_dequantize", "qsim::quantize_dequantize_backward"}
    if x.dim() > in_place_dims:
        planned, allocating = allocating, planned
    assert {"qsim::range_qparams", "qsim::range_grads"} | planned <= ran, ran
    assert not ran & (allocating | {"qsim::zero_point"}), ran


def test_double_backward_raises_and_first_gradients_stay_the_same(monkeypatch):
    gen = torch.Generator().manual_seed(5)
    x, upstream = torch.randn(6, 40, generator=gen), torch.randn(6, 40, generator=gen)
    q = _quantizer(gen, GridKind.ASYMMETRIC, 8, (6, 1), x)

    def first_order(q, create_graph):
        xi = x.clone().requires_grad_()
        return torch.autograd.grad(q(xi), [xi, q.min, q.max], upstream, create_graph=create_graph)

    grads = first_order(q, True)
    assert all(g.requires_grad for g in grads), "the first gradients must stay on the graph"
    for g in grads:
        with pytest.raises(RuntimeError, match="quantize_dequantize_range's backward is not "
                                               "differentiable"):
            torch.autograd.grad(g.sum(), [q.min], retain_graph=True)
    _compare(q, monkeypatch, lambda q: [g.detach() for g in first_order(q, True)],
             "create_graph=True")
    _compare(q, monkeypatch, lambda q: list(first_order(q, False)), "create_graph=False")


def _samples():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(6, 40, generator=gen).requires_grad_()
    lo = (-torch.rand(6, generator=gen) - 0.5).requires_grad_()
    hi = (torch.rand(6, generator=gen) + 0.5).requires_grad_()
    for kind in _KINDS:
        yield (x, lo, hi, 8, int(kind), 0)
        yield (x, lo[:1].reshape(()).detach().requires_grad_(), hi[:1].reshape(()), 4, int(kind), None)


@pytest.mark.parametrize("args", list(_samples()))
def test_opcheck_quantize_dequantize_range(args):
    for check, result in opcheck(ops.quantize_dequantize_range, args).items():
        assert result == "SUCCESS", f"{check}: {result}"


def test_opcheck_range_qparams_and_grads():
    lo, hi = torch.tensor([-1.0, -0.2, 0.3]), torch.tensor([1.0, 0.5, 2.0])
    ds, dzp = torch.randn(3), torch.randn(3)
    for kind in _KINDS:
        for op, args in ((ops.range_qparams, (lo, hi, 8, int(kind))),
                         (ops.range_grads, (lo, hi, ds, dzp, 8, int(kind)))):
            for check, result in opcheck(op, args).items():
                assert result == "SUCCESS", f"{op}, {kind.name}, {check}: {result}"


@pytest.mark.parametrize("call,error,match", [
    (lambda x, lo, hi: ops.quantize_dequantize_range(x, lo.double(), hi, 8, 0), TypeError,
     "min and max must be float32"),
    (lambda x, lo, hi: ops.quantize_dequantize_range(x, lo, hi[:2], 8, 0, 0), ValueError,
     "max shape"),
    (lambda x, lo, hi: ops.quantize_dequantize_range(x, lo, hi, 8, 0), ValueError,
     "per tensor .*min must hold one value"),
    (lambda x, lo, hi: ops.quantize_dequantize_range(x, lo, hi, 1, 0, 0), ValueError,
     "bitwidth must be from 2 to 16"),
    (lambda x, lo, hi: ops.range_grads(lo, hi, lo, hi[:2], 8, 0), ValueError,
     "dzero_point shape .* must equal dscale shape"),
    (lambda x, lo, hi: ops.range_grads(lo, hi, lo.half(), hi, 8, 0), TypeError,
     "dscale and dzero_point must be float32"),
])
def test_bad_arguments_are_named(call, error, match):
    x, lo, hi = torch.randn(3, 4), torch.tensor([-1.0, -1.0, -1.0]), torch.tensor([1.0, 1.0, 1.0])
    with pytest.raises(error, match=match):
        call(x, lo, hi)
