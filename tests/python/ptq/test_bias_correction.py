"""`correct_bias` on a trained MLP in a W4A8 (per-tensor, min/max) sim: the per-channel mean
output error of the quantized layers on held-out data drops, and on the correction data the
first layer's mean error becomes zero (its bias absorbed exactly the measured shift)."""

import copy

import torch
from torch import nn

from torchqsim.ptq import correct_bias
from torchqsim.quantsim import QuantizationSimModel

from ptq_task import linear_outputs


def _mean_errors(fp, sim, x):
    """Per layer: mean over channels of |mean over samples of (quantized - FP32 output)|."""
    ref, got = linear_outputs(fp, x), linear_outputs(sim.model, x)
    return {n: (got[n] - ref[n]).mean(dim=0).abs().mean().item() for n in ref}


def test_bias_correction_lowers_mean_output_error_on_held_out_data(trained_mlp):
    fp, train, test = trained_mlp
    model = copy.deepcopy(fp)
    loader = [train[0][i:i + 128] for i in range(0, 2048, 128)]
    sim = QuantizationSimModel(model, train[0][:8], quant_scheme="tf", default_param_bw=4)
    sim.compute_encodings(lambda m, _: [m(x) for x in loader], None)
    before = _mean_errors(fp, sim, test[0])
    shifts = correct_bias(model, sim, loader, len(loader), progress=False)
    assert sorted(shifts) == ["0", "2", "4"]
    after = _mean_errors(fp, sim, test[0])
    for name in ("2", "4"):
        assert after[name] < 0.25 * before[name], (name, before, after)
    assert after["0"] < before["0"], (before, after)
    # The FP model's biases got the same shift as the sim's (they are separate copies).
    for name, shift in shifts.items():
        assert torch.allclose(model.get_submodule(name).bias,
                              fp.get_submodule(name).bias - shift, atol=1e-6)
        assert torch.equal(model.get_submodule(name).bias, sim.model.get_submodule(name).bias)
    # Layer 0 has no corrected layer upstream: on the correction data its mean error before
    # its output quantizer is now zero up to float rounding.
    x = torch.cat(loader)
    q0 = sim.model.get_submodule("0")
    with torch.no_grad():
        w = q0.param_quantizers["weight"](q0.weight)
        y_q = nn.functional.linear(q0.input_quantizers[0](x), w, q0.bias)
        y_fp = fp[0](x)
    assert (y_q - y_fp).mean(dim=0).abs().max().item() < 1e-5
