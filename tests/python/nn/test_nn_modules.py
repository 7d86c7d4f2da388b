"""Every quantized wrapper of `torchqsim.nn` against torch.

Oracles: the torch module itself (all slots None: bit for bit) and `wrapper_reference`, which
runs the torch module through ``torch.func.functional_call`` on pure-torch quantize-dequantized
parameters and inputs (`reference.ste_quantize_dequantize`) and quantize-dequantizes its outputs:
forward bit for bit, and the gradients of inputs and (shadow) parameters.
"""

import copy
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

import torchqsim.nn as qnn
from asserts import assert_same
from wrapper_reference import narrow_quantizer, reference_call


def _gen():
    return torch.Generator().manual_seed(0)


def randn(*shape):
    return lambda g: torch.randn(*shape, generator=g)


def positive(*shape):
    return lambda g: torch.rand(*shape, generator=g) + 0.1


def indices(n, *shape):
    return lambda g: torch.randint(0, n, shape, generator=g)


@dataclass
class Case:
    id: str
    make: object                      # () -> torch module
    inputs: list                      # generator -> tensor, or a constant
    kwargs: dict = field(default_factory=dict)
    weight_shape: tuple = ()          # encoding shape of the weight quantizer (per-channel)
    train: bool = False
    # Turns the reference module into one whose plain forward the wrapper must match.
    prepare_reference: object = None


CASES = [
    Case("Linear", lambda: nn.Linear(6, 5), [randn(3, 6)], weight_shape=(5, 1)),
    Case("Conv1d-circular", lambda: nn.Conv1d(3, 4, 3, padding=1, padding_mode="circular"),
         [randn(2, 3, 8)]),
    Case("Conv2d-reflect-stride", lambda: nn.Conv2d(3, 4, 3, 2, 1, padding_mode="reflect"),
         [randn(2, 3, 7, 7)], weight_shape=(4, 1, 1, 1)),
    Case("Conv2d-same-groups-dilation",
         lambda: nn.Conv2d(4, 4, 3, padding="same", dilation=2, groups=2, bias=False),
         [randn(1, 4, 9, 9)]),
    Case("Conv2d-replicate", lambda: nn.Conv2d(2, 3, (3, 2), padding=(1, 2),
                                               padding_mode="replicate"), [randn(1, 2, 5, 6)]),
    Case("Conv3d", lambda: nn.Conv3d(2, 3, 2), [randn(1, 2, 4, 4, 4)]),
    Case("ConvTranspose1d-output_padding",
         lambda: nn.ConvTranspose1d(3, 2, 3, stride=2, output_padding=1), [randn(2, 3, 5)]),
    Case("ConvTranspose2d-output_size", lambda: nn.ConvTranspose2d(3, 4, 3, 2, 1),
         [randn(1, 3, 4, 4)], {"output_size": [8, 8]}, weight_shape=(1, 4, 1, 1)),
    Case("ConvTranspose2d-groups", lambda: nn.ConvTranspose2d(4, 4, 2, 2, groups=2),
         [randn(1, 4, 3, 3)]),
    Case("BatchNorm1d-eval", lambda: _with_stats(nn.BatchNorm1d(4)), [randn(5, 4)]),
    Case("BatchNorm1d-train", lambda: _randomized(nn.BatchNorm1d(4)), [randn(5, 4)],
         train=True),
    Case("BatchNorm2d-train-cumulative", lambda: _randomized(nn.BatchNorm2d(3, momentum=None)),
         [randn(2, 3, 4, 4)], train=True),
    Case("BatchNorm2d-train-untracked",
         lambda: _randomized(nn.BatchNorm2d(3, track_running_stats=False)),
         [randn(2, 3, 4, 4)], train=True),
    Case("LayerNorm", lambda: _randomized(nn.LayerNorm((4, 5))), [randn(2, 3, 4, 5)]),
    Case("GroupNorm", lambda: _randomized(nn.GroupNorm(2, 4)), [randn(2, 4, 3)]),
    Case("Embedding", lambda: nn.Embedding(10, 4, padding_idx=0), [indices(10, 2, 3)]),
    Case("Embedding-max_norm", lambda: nn.Embedding(10, 4, max_norm=1.0), [indices(10, 2, 3)],
         prepare_reference=lambda m, idx: _renormalized_by_torch(m, idx)),
    Case("ReLU", nn.ReLU, [randn(2, 3, 4)]),
    Case("ReLU6", nn.ReLU6, [lambda g: 4 * torch.randn(2, 3, 4, generator=g)]),
    Case("GELU-tanh", lambda: nn.GELU(approximate="tanh"), [randn(2, 3, 4)]),
    Case("SiLU", nn.SiLU, [randn(2, 3, 4)]),
    Case("Sigmoid", nn.Sigmoid, [randn(2, 3, 4)]),
    Case("Tanh", nn.Tanh, [randn(2, 3, 4)]),
    Case("Softmax", lambda: nn.Softmax(dim=1), [randn(2, 3, 4)]),
    Case("Hardswish", nn.Hardswish, [randn(2, 3, 4)]),
    Case("LeakyReLU", lambda: nn.LeakyReLU(0.2), [randn(2, 3, 4)]),
    Case("PReLU", lambda: _randomized(nn.PReLU(3)), [randn(2, 3, 4)]),
    Case("MaxPool1d", lambda: nn.MaxPool1d(2), [randn(2, 3, 8)]),
    Case("MaxPool2d-indices", lambda: nn.MaxPool2d(2, return_indices=True), [randn(1, 2, 4, 4)]),
    Case("AvgPool1d", lambda: nn.AvgPool1d(3, stride=2, padding=1), [randn(2, 3, 8)]),
    Case("AvgPool2d", lambda: nn.AvgPool2d(2), [randn(1, 2, 4, 6)]),
    Case("AdaptiveAvgPool1d", lambda: nn.AdaptiveAvgPool1d(3), [randn(2, 3, 8)]),
    Case("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((2, 1)), [randn(1, 2, 5, 4)]),
    Case("Dropout-eval", lambda: nn.Dropout(0.5), [randn(4, 5)]),
    Case("Dropout-train", lambda: nn.Dropout(0.5), [randn(4, 5)], train=True),
    Case("Flatten", nn.Flatten, [randn(2, 3, 4)]),
    Case("Upsample-bilinear", lambda: nn.Upsample(scale_factor=2, mode="bilinear"),
         [randn(1, 2, 3, 3)]),
    Case("Add", qnn.Add, [randn(3, 4), randn(4)]),
    Case("Add-scalar", qnn.Add, [randn(3, 4), 0.5]),
    Case("Subtract-scalar-first", qnn.Subtract, [1.0, randn(3, 4)]),
    Case("Multiply", qnn.Multiply, [randn(3, 4), randn(3, 4)]),
    Case("Divide", qnn.Divide, [randn(3, 4), positive(3, 4)]),
    Case("Pow", qnn.Pow, [positive(3, 4), 1.5]),
    Case("MatMul", qnn.MatMul, [randn(2, 3, 4), randn(4, 5)]),
    Case("Bmm", qnn.Bmm, [randn(2, 3, 4), randn(2, 4, 5)]),
    Case("Concat-3", lambda: qnn.Concat(dim=1, num_inputs=3),
         [randn(2, 1), randn(2, 3), randn(2, 2)]),
    Case("Exp", qnn.Exp, [randn(3, 4)]),
    Case("Sqrt", qnn.Sqrt, [positive(3, 4)]),
    Case("Rsqrt", qnn.Rsqrt, [positive(3, 4)]),
    Case("Mean", lambda: qnn.Mean(dim=(1, 2), keepdim=True), [randn(2, 3, 4)]),
    Case("Mean-all", qnn.Mean, [randn(2, 3, 4)]),
    Case("Interpolate", lambda: qnn.Interpolate(size=(5, 5), mode="bilinear",
                                                align_corners=False), [randn(1, 2, 3, 3)]),
    Case("ScaledDotProductAttention", qnn.ScaledDotProductAttention,
         [randn(2, 2, 3, 4), randn(2, 2, 5, 4), randn(2, 2, 5, 4), randn(3, 5)]),
]


def _randomized(module):
    """Random affine parameters, so that their quantizers matter."""
    g = _gen()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return module


def _with_stats(bn):
    g = _gen()
    bn.running_mean.copy_(torch.randn(bn.num_features, generator=g))
    bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
    return _randomized(bn)


def _renormalized_by_torch(embedding, idx):
    """torch's own forward renormalizes the looked-up rows of the weight in place; the wrapper
    must quantize those renormalized rows (quantized rows stay on the grid)."""
    with torch.no_grad():
        embedding(idx)
    embedding.max_norm = None
    return embedding


def _setup(case):
    torch.manual_seed(0)
    module = case.make().train(case.train)
    g = _gen()
    args = [a(g) if callable(a) else a for a in case.inputs]
    return module, args


def _run(module, args, kwargs):
    torch.manual_seed(1)  # dropout draws the same mask in both runs
    out = module(*args, **kwargs)
    return out if isinstance(out, tuple) else (out,)


def _same(a, b, what):
    """Bit for bit; integer tensors (indices, batch counters) by value."""
    if a.is_floating_point():
        assert_same(a, b, what)
    else:
        assert a.dtype == b.dtype and torch.equal(a, b), f"{what}: {a} != {b}"


def _same_grad(a, b, what):
    """Bit for bit, except the sign of zero (the kernel's STE writes +0 where clamped)."""
    assert_same(a + 0.0, b + 0.0, what)


def _assert_outputs_same(got, expected):
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected)):
        _same(a, b, f"output {i}")


def _floating(x):
    return isinstance(x, torch.Tensor) and x.is_floating_point()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_disabled_quantizers_give_the_torch_module_output_exactly(case):
    module, args = _setup(case)
    expected_module = copy.deepcopy(module)
    wrapper = qnn.to_quantized(module, "m")
    assert type(wrapper) is qnn.quantized_class(type(module)) and wrapper.onnx_types
    assert all(q is None for q in [*wrapper.input_quantizers, *wrapper.output_quantizers,
                                   *wrapper.param_quantizers.values()])
    _assert_outputs_same(_run(wrapper, args, case.kwargs),
                         _run(expected_module, args, case.kwargs))
    for name, buf in expected_module.named_buffers():  # batch norm running statistics
        _same(wrapper.get_buffer(name), buf, name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_quantized_forward_and_gradients_match_the_pure_torch_reference(case):
    module, args = _setup(case)
    ref_module = copy.deepcopy(module)
    wrapper = qnn.to_quantized(module, "m")
    fp_out = _run(copy.deepcopy(module), args, case.kwargs)
    # Ranges narrower than the data, so clipping (and the STE mask) is exercised.
    for i, a in enumerate(args[:len(wrapper.input_quantizers)]):
        wrapper.input_quantizers[i] = narrow_quantizer(a) if _floating(a) else None
    for name, p in module.named_parameters(recurse=False):
        shape = case.weight_shape if name == "weight" else ()
        wrapper.param_quantizers[name] = narrow_quantizer(p, shape)
    for i, o in enumerate(fp_out[:len(wrapper.output_quantizers)]):
        wrapper.output_quantizers[i] = narrow_quantizer(o) if _floating(o) else None

    leaves = [a.clone().requires_grad_() if _floating(a) else a for a in args]
    ref_leaves = [a.clone().requires_grad_() if _floating(a) else a for a in args]
    got = _run(wrapper, leaves, case.kwargs)
    if case.prepare_reference is not None:
        ref_module = case.prepare_reference(ref_module, *args)
    torch.manual_seed(1)
    expected = reference_call(ref_module, wrapper, tuple(ref_leaves), case.kwargs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    _assert_outputs_same(got, expected)
    assert not torch.equal(got[0], fp_out[0]), "the quantizers changed nothing"

    cotangent = torch.randn(got[0].shape, generator=_gen())
    (got[0] * cotangent).sum().backward()
    (expected[0] * cotangent).sum().backward()
    for i, (a, b) in enumerate(zip(leaves, ref_leaves)):
        if _floating(a):
            _same_grad(a.grad, b.grad, f"grad of input {i}")
    for (name, p), (_, p_ref) in zip(module.named_parameters(recurse=False),
                                     ref_module.named_parameters(recurse=False)):
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached {name}"
        assert_same(p.detach(), p_ref.detach(), name)  # shadow parameter never quantized
        _same_grad(p.grad, p_ref.grad, f"grad of {name}")
    for name, buf in ref_module.named_buffers():
        _same(module.get_buffer(name), buf, name)


def test_functional_modules_are_their_torch_functions():
    g = _gen()
    x, y = torch.randn(3, 4, generator=g), torch.rand(3, 4, generator=g) + 0.1
    pairs = [(qnn.Add()(x, y), x + y), (qnn.Subtract()(x, y), x - y),
             (qnn.Multiply()(x, y), x * y), (qnn.Divide()(x, y), x / y),
             (qnn.Pow()(y, x), y ** x), (qnn.MatMul()(x, y.T), x @ y.T),
             (qnn.Bmm()(x[None], y.T[None]), torch.bmm(x[None], y.T[None])),
             (qnn.Concat(1, 2)(x, y), torch.cat([x, y], 1)), (qnn.Exp()(x), x.exp()),
             (qnn.Sqrt()(y), y.sqrt()), (qnn.Rsqrt()(y), y.rsqrt()),
             (qnn.Mean(0, True)(x), x.mean(0, keepdim=True)), (qnn.Mean()(x), x.mean()),
             (qnn.Interpolate(scale_factor=2)(x[None]),
              torch.nn.functional.interpolate(x[None], scale_factor=2))]
    for i, (got, expected) in enumerate(pairs):
        assert_same(got, expected, f"pair {i}")


def test_every_registered_builtin_class_has_onnx_types_and_the_documented_slots():
    expected_onnx = {nn.Linear: ("Gemm", "MatMul"), nn.Conv2d: ("Conv",),
                     nn.ConvTranspose2d: ("ConvTranspose",), nn.ReLU: ("Relu",),
                     nn.ReLU6: ("Clip",), nn.BatchNorm2d: ("BatchNormalization",),
                     nn.LayerNorm: ("LayerNorm", "LayerNormalization"), qnn.Add: ("Add",),
                     nn.Embedding: ("Gather",), nn.Softmax: ("Softmax",)}
    for cls, onnx in expected_onnx.items():
        assert qnn.quantized_class(cls).onnx_types == onnx, cls
    assert len(qnn.QuantizedEmbedding(5, 2).input_quantizers) == 0
    assert len(qnn.QuantizedConcat(num_inputs=4).input_quantizers) == 4
    assert list(qnn.QuantizedConv2d(2, 2, 1).param_quantizers) == ["weight", "bias"]
    assert list(qnn.QuantizedPReLU().param_quantizers) == ["weight"]
