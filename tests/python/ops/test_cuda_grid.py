"""CUDA twin of the zero-point tests (tests/python/quantization/test_grid.py): the op
``qsim::zero_point`` on CUDA (kernels/cuda/grid.cu) equals the CPU kernel, the oracle there,
bit for bit, on every grid kind, with rounding ties, non-finite values and zero scales; its
gradients (the same ATen formula on both devices) too. Needs a GPU and a CUDA build of torch;
skipped otherwise (scripts/check_cuda.sh compiles the sources anywhere nvcc is).
"""

import pytest
import torch

from asserts import assert_same
from torchqsim.quantization.grid import Grid, GridKind

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU and a CUDA build of torch")


def _held(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    lo = torch.cat([torch.randn(n, generator=g) * 4,
                    torch.tensor([-2.5, -3.5, 0.5, -0.0, -1.0, 0.0, float("-inf"), float("nan")])])
    scale = torch.cat([torch.rand(n, generator=g) * 0.05 + 1e-6,
                       torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0])])
    return lo, scale


@needs_cuda
@pytest.mark.parametrize("kind", list(GridKind))
@pytest.mark.parametrize("bitwidth", [4, 8, 16])
def test_zero_point_matches_cpu_bit_for_bit(kind, bitwidth):
    grid = Grid.of(bitwidth, kind)
    lo, scale = _held(100_000, bitwidth)
    got = grid.zero_point(lo.cuda(), scale.cuda())
    assert got.device.type == "cuda"
    assert_same(got.cpu(), grid.zero_point(lo, scale), f"{kind.name} {bitwidth}")


@needs_cuda
def test_zero_point_gradients_match_cpu_bit_for_bit():
    grid = Grid.of(8, GridKind.ASYMMETRIC)
    lo0, scale0 = _held(5000, 1)
    lo0, scale0 = lo0[:5000], scale0[:5000]
    upstream = torch.randn(5000, generator=torch.Generator().manual_seed(2))
    results = []
    for device in ("cpu", "cuda"):
        lo = lo0.detach().to(device).requires_grad_()
        scale = scale0.detach().to(device).requires_grad_()
        (grid.zero_point(lo, scale) * upstream.to(device)).sum().backward()
        results.append((lo.grad.cpu(), scale.grad.cpu()))
    assert_same(results[1][0], results[0][0], "min grad")
    assert_same(results[1][1], results[0][1], "scale grad")


@needs_cuda
def test_zero_point_rejects_mixed_devices():
    with pytest.raises(ValueError, match="zero_point: min and scale must be CUDA tensors"):
        torch.ops.qsim.zero_point(torch.zeros(3, device="cuda"), torch.ones(3), 8,
                                  int(GridKind.ASYMMETRIC))
