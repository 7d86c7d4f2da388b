"""Device mismatches between x, scale, zero_point and out are clear errors (issue 14 item 1).

A call with any tensor on the meta device is dispatched to the fake implementation
(wrappers/ops.py), which used to return uninitialised memory for CPU data with a meta scale and to
leave ``out=`` unchanged; the fakes now make the kernels' device check."""

import pytest
import torch

import torchqsim  # noqa: F401  (registers the ops)
from torchqsim import functional as F

OPS = {
    "quantize_dequantize": lambda x, s, z: torch.ops.qsim.quantize_dequantize(x, s, z, -128, 127),
    "quantize": lambda x, s, z: torch.ops.qsim.quantize(x, s, z, -128, 127),
    "dequantize": lambda x, s, z: torch.ops.qsim.dequantize(x, s, z),
}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("meta", ["x", "scale", "zero_point"])
def test_one_meta_tensor_among_cpu_ones_is_an_error(op, meta):
    t = {"x": torch.randn(4), "scale": torch.tensor(0.1), "zero_point": torch.tensor(0)}
    t[meta] = t[meta].to("meta")
    name = "q" if op == "dequantize" and meta == "x" else meta
    with pytest.raises(ValueError, match=r"must be on the same device, got .*" + name + " on meta"):
        OPS[op](t["x"], t["scale"], t["zero_point"])


def test_out_on_meta_or_qparams_on_meta_with_out_is_an_error():
    x, out = torch.randn(4), torch.full((4,), 7.0)
    with pytest.raises(ValueError, match="out on meta"):
        F.quantize_dequantize(x, 0.1, 0, -128, 127, out=torch.empty(4, device="meta"))
    with pytest.raises(ValueError, match="scale on meta"):
        F.quantize_dequantize(x, torch.tensor(0.1, device="meta"), 0, -128, 127, out=out)
    assert torch.equal(out, torch.full((4,), 7.0))  # untouched


def test_all_meta_still_traces():
    x = torch.randn(2, 3, device="meta")
    y = F.quantize_dequantize(x, torch.tensor(0.1, device="meta"),
                              torch.tensor(0, device="meta"), -128, 127)
    assert y.device.type == "meta" and y.shape == (2, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_scale_with_cuda_data_is_an_error():
    with pytest.raises(ValueError, match="same device"):
        F.quantize_dequantize(torch.randn(4, device="cuda"), torch.tensor(0.1), 0, -128, 127)
