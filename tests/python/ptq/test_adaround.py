"""`apply_adaround` at 4 bits on a trained MLP: in the weight-quantized model, every layer's
output MSE (against the FP32 model, on held-out data) is below that of nearest rounding with the
same encodings (oracle: torchqsim.functional nearest rounding, itself checked against
onnxruntime); the weights lie on the grid; an interruption leaves the model unchanged."""

import copy
import json

import pytest
import torch

import torchqsim.functional as F
from torchqsim.ptq import apply_adaround
from torchqsim.quantsim import QuantizationSimModel

from ptq_task import linear_outputs


def _loader(x, batch):
    return [x[i:i + batch] for i in range(0, x.shape[0], batch)]


def test_adaround_beats_nearest_rounding_at_4_bits(trained_mlp, tmp_path):
    fp, train, test = trained_mlp
    model, nearest = copy.deepcopy(fp), copy.deepcopy(fp)
    enc = apply_adaround(model, train[0][:8], _loader(train[0], 128), 8, param_bw=4,
                         iterations=800, path=str(tmp_path), filename_prefix="ada",
                         progress=False)
    assert sorted(enc) == ["0.weight", "2.weight", "4.weight"]
    assert json.loads((tmp_path / "ada.encodings").read_text())["param_encodings"] == enc
    for name in ("0", "2", "4"):
        e = enc[f"{name}.weight"]
        assert len(e) == fp.get_submodule(name).out_features            # per channel
        assert all(c["bitwidth"] == 4 and c["is_symmetric"] == "True" and c["offset"] == -8
                   for c in e)                                             # signed, zero point 0
        scale, zp = torch.tensor([c["scale"] for c in e]), torch.zeros(len(e))
        w_fp, w_ada = fp.get_submodule(name).weight, model.get_submodule(name).weight
        w_near = F.quantize_dequantize(w_fp, scale, zp, -8, 7, axis=0)
        with torch.no_grad():
            nearest.get_submodule(name).weight.copy_(w_near)
        assert torch.equal(F.quantize_dequantize(w_ada, scale, zp, -8, 7, axis=0), w_ada), \
            "AdaRound weights off grid"
        assert not torch.equal(w_ada, w_near)
        # each weight went to one of its two neighbouring grid points
        assert bool(((w_ada - w_fp).abs() <= scale.view(-1, 1) * (1 + 1e-5)).all())
    # A sim of the AdaRounded model with the encodings loaded and frozen reproduces the weights.
    sim = QuantizationSimModel(model, test[0][:8], quant_scheme="tf", default_param_bw=8)
    sim.load_encodings(tmp_path / "ada.encodings", freeze=True)
    sim.compute_encodings(lambda m, _: m(train[0][:256]), None)
    for name in ("0", "2", "4"):
        qm = sim.model.get_submodule(name)
        assert qm.param_quantizers["weight"].bitwidth == 4
        assert torch.equal(qm.param_quantizers["weight"](qm.weight), qm.weight)
    ref, out_near, out_ada = (linear_outputs(m, test[0]) for m in (fp, nearest, model))
    for name in ("0", "2", "4"):
        mse_near = (out_near[name] - ref[name]).square().mean().item()
        mse_ada = (out_ada[name] - ref[name]).square().mean().item()
        assert mse_ada < 0.85 * mse_near, (name, mse_near, mse_ada)


def test_adaround_interrupted_leaves_model_unchanged(trained_mlp):
    fp, train, _ = trained_mlp
    model = copy.deepcopy(fp)
    state = copy.deepcopy(model.state_dict())

    class Interrupting:
        """Yields batches; interrupts while caching the second layer's data."""
        calls = 0

        def __iter__(self):
            Interrupting.calls += 1
            if Interrupting.calls == 3:
                raise KeyboardInterrupt
            return iter(_loader(train[0][:256], 128))

    with pytest.raises(KeyboardInterrupt):
        apply_adaround(model, train[0][:8], Interrupting(), 2, param_bw=4, iterations=5,
                       progress=False)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
