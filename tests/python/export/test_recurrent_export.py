"""sim.export of recurrent layers (nn.LSTM, nn.GRU, nn.RNN): the ONNX exporter turns their
weights into the LSTM/GRU/RNN op's W/R/B inputs (gates reordered, directions stacked), so these
tests check what that step could lose.

Oracles: onnxruntime (CPU, optimizations off) on ``{prefix}_qdq.onnx`` against ``sim.model`` and
against the same sim with its weight quantizers removed (the QDQ graph must carry the quantized
weights, not the FP32 ones); the ``{prefix}.onnx`` initializers; a fresh sim loading
``{prefix}.encodings``, which must reproduce the sim bit for bit (every weight and every output
of the layer, ``h_n`` and ``c_n`` included, restored onto its own quantizer).
"""

import json
import warnings

import pytest
import torch
from torch import nn

import onnx
from asserts import assert_within
from torchqsim import QuantizationSimModel


class _Model(nn.Module):
    """A recurrent layer whose three (two) outputs all reach the model output."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(4, 6, num_layers=2, batch_first=True, bidirectional=True)

    def forward(self, x):
        out, state = self.rnn(x)
        h, c = state if isinstance(state, tuple) else (state, state)
        return out, h, c * 0.5


def _sim(cell, calibrate=True):
    torch.manual_seed(0)
    model = _Model(cell).eval()
    x = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, x, default_param_bw=4, default_output_bw=16)
    if calibrate:
        sim.compute_encodings(lambda m: m(x))
    return sim, x


def _outputs(model, x):
    with torch.no_grad():
        return list(model(x))


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN], ids=lambda c: c.__name__)
def test_qdq_graph_runs_the_quantized_recurrent_weights(cell, ort_run, tmp_path):
    sim, x = _sim(cell)
    paths = sim.export(str(tmp_path), "model", x)
    expected = _outputs(sim.model, x)
    rnn = sim.model.rnn
    saved = dict(rnn.param_quantizers)
    for name in saved:
        rnn.param_quantizers[name] = None
    fp32_weights = _outputs(sim.model, x)
    for name, q in saved.items():
        rnn.param_quantizers[name] = q
    got = ort_run(paths["qdq_onnx"], x)
    for i, (a, b, f) in enumerate(zip(got, expected, fp32_weights)):
        step = sim.model.get_submodule("rnn").output_quantizers[0].get_scale()
        # the recurrence itself sums in another order in onnxruntime: one output step at most
        assert_within(a, b, step, f"output {i}")
        assert (b - f).abs().max() > 20 * step, "4-bit weights must move the outputs"


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU], ids=lambda c: c.__name__)
def test_encodings_name_every_recurrent_weight_and_load_back_exactly(cell, tmp_path):
    sim, x = _sim(cell)
    paths = sim.export(str(tmp_path), "model", x, "1.0.0")
    initializers = {t.name for t in onnx.load(paths["onnx"]).graph.initializer}
    with open(paths["encodings"]) as f:
        params = {e["name"] for e in json.load(f)["param_encodings"]}
    weights = {f"rnn.{n}" for n in sim.model.rnn.param_quantizers if "weight" in n}
    assert len(weights) == 8 and weights <= params <= initializers
    fresh, _ = _sim(cell, calibrate=False)
    fresh.load_encodings(paths["encodings"], strict=True, partial=False)
    assert sorted(n for n, _ in fresh.quantizers()) == sorted(n for n, _ in sim.quantizers())
    for a, b in zip(_outputs(fresh.model, x), _outputs(sim.model, x)):
        assert torch.equal(a, b)
