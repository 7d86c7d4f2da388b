"""The qsim ops inside `torch.compile(fullgraph=True)`: no graph break, and the compiled
forward and backward equal eager bit for bit (the same kernels run; only the tracing differs).

Oracle: the eager module on the same inputs. Inductor's caches are off for the test: their keys
do not cover the ops' Python fake implementations, so a cached graph could hide a broken one.
"""

import pytest
import torch
from torch import nn

import torchqsim.functional as F
from asserts import assert_same
from ops_run import no_compile_caches

QMIN, QMAX = F.grid_range(8)


class _QuantizedAffine(nn.Module):
    """y = qdq(x) * qdq(weight.t()) + fp16(bias), with learnable per-channel weight scale and
    per-tensor input scale and zero point; a quantize/dequantize pair on the output. The weight
    is stored transposed, so the op sees a strided view (as for ConvTranspose weights)."""

    def __init__(self, channels):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(16, channels, generator=g))
        # full-size bias: a broadcast one would make autograd sum its gradient, and inductor may
        # order that sum differently from eager
        self.bias = nn.Parameter(torch.randn(channels, 16, generator=g))
        self.weight_scale = nn.Parameter(self.weight.detach().abs().amax(0) / QMAX)
        self.input_scale = nn.Parameter(torch.tensor(0.02))
        self.input_zero_point = nn.Parameter(torch.tensor(3.0))

    def forward(self, x):
        w = F.quantize_dequantize(self.weight.t(), self.weight_scale,
                                  torch.zeros(self.weight.shape[1]), QMIN, QMAX, axis=0)
        xq = F.quantize_dequantize(x, self.input_scale, self.input_zero_point, QMIN, QMAX)
        y = xq * w + F.float_quantize_dequantize(self.bias, torch.float16)
        q = F.quantize(y, 0.05, 0, QMIN, QMAX)
        return F.dequantize(q, 0.05, 0)


def _run(module, x, dy):
    y = module(x)
    grads = torch.autograd.grad(y, [x, *module.parameters()], dy)
    return y, grads


# inductor's own use of torch.jit warns; that is torch's business, not ours
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("cpp_wrapper", [False, True], ids=["python_wrapper", "cpp_wrapper"])
@no_compile_caches
def test_compiled_module_matches_eager_forward_and_backward(cpp_wrapper):
    """Also with inductor's C++ wrapper (``torch._inductor.config.cpp_wrapper``), which launches
    the graph's kernels and the qsim ops from C++ (``bench_model.py --cpp-wrapper``)."""
    torch._dynamo.reset()
    module = _QuantizedAffine(8)
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(8, 16, generator=g) * 2).requires_grad_()
    dy = torch.randn(8, 16, generator=g)
    compiled = torch.compile(module, fullgraph=True)
    y_eager, grads_eager = _run(module, x, dy)
    with torch._inductor.config.patch(cpp_wrapper=cpp_wrapper):
        y_compiled, grads_compiled = _run(compiled, x, dy)
    assert_same(y_compiled, y_eager, "output")
    names = ["x", *(n for n, _ in module.named_parameters())]
    for name, got, want in zip(names, grads_compiled, grads_eager):
        assert (got != 0).any(), f"no gradient reaches {name}"
        assert_same(got, want, f"grad of {name}")
