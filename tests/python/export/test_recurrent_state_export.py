"""A model input ``h0`` (and ``c0``) of nn.LSTM / nn.GRU in a sim and its export: the recurrent
wrappers' state slots (torchqsim/nn/recurrent.py) are enabled by the config's ``model_input``
rule, calibrated, written to the encodings under the ONNX input's name and quantized in the
QDQ graph.

Oracles: the sim with its state slots emptied, run on states fake-quantized by the pure-torch
formula (tests/python/reference.py) with the slots' encodings (bit for bit); onnxruntime on
``{prefix}_qdq.onnx`` (CPU, optimizations off; within one output step, the recurrence summing in
another order as in test_recurrent_export.py); a fresh sim loading ``{prefix}.encodings``
(bit for bit).
"""

import json
import warnings

import pytest
import torch
from torch import nn

import onnx
import reference as ref
from asserts import assert_within
from torchqsim import QuantizationSimModel


class _StateModel(nn.Module):
    """A recurrent layer fed a given initial state (LSTM positionally, GRU as ``hx=``)."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(4, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x, h0, c0=None):
        if c0 is None:
            out, h = self.rnn(x, hx=h0)
        else:
            out, (h, _) = self.rnn(x, (h0, c0))
        return self.head(out), h


def _inputs(cell):
    g = torch.Generator().manual_seed(1)
    x, h0 = torch.randn(2, 5, 4, generator=g), torch.randn(4, 2, 6, generator=g)
    return (x, h0, torch.randn(4, 2, 6, generator=g)) if cell is nn.LSTM else (x, h0)


def _sim(cell, calibrate=True):
    torch.manual_seed(0)
    inputs = _inputs(cell)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(_StateModel(cell).eval(), inputs, default_output_bw=8)
    if calibrate:
        sim.compute_encodings(lambda m: m(*inputs))
    return sim, inputs


def _qdq(q, x):
    return ref.quantize_dequantize(x, q.get_scale().detach(), q.get_zero_point().detach(),
                                   q.qmin, q.qmax)


def _outputs(model, inputs):
    with torch.no_grad():
        return list(model(*inputs))


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU], ids=lambda c: c.__name__)
def test_model_input_state_is_quantized_in_the_sim(cell):
    sim, inputs = _sim(cell)
    slots = sim.model.rnn.input_quantizers
    states = list(range(1, len(inputs)))
    assert all(slots[i] is not None and slots[i].is_initialized() for i in [0] + states)
    expected = _outputs(sim.model, inputs)
    given = [inputs[0]] + [_qdq(slots[i], inputs[i]) for i in states]
    saved = {i: slots[i] for i in states}
    for i in states:
        slots[i] = None
    got = _outputs(sim.model, given)
    unquantized = _outputs(sim.model, inputs)
    for i, q in saved.items():
        slots[i] = q
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(unquantized[0], expected[0]), "the state slots must matter"
    h_n = sim.model.rnn.output_quantizers[1]  # the final state (an LSTM's h_n of (h_n, c_n))
    assert all(q is not None for q in sim.model.rnn.output_quantizers)
    assert torch.equal(_qdq(h_n, expected[1]), expected[1])


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU], ids=lambda c: c.__name__)
def test_state_encodings_exported_and_loaded_back(cell, ort_run, tmp_path):
    sim, inputs = _sim(cell)
    paths = sim.export(str(tmp_path), "model", inputs, "1.0.0")
    names = ["h0", "c0"][:len(inputs) - 1]
    with open(paths["encodings"]) as f:
        activations = {e["name"]: e for e in json.load(f)["activation_encodings"]}
    slots = sim.model.rnn.input_quantizers
    for i, name in enumerate(names, start=1):
        assert activations[name]["scale"] == pytest.approx([slots[i].get_scale().item()])
    qdq = onnx.load(paths["qdq_onnx"])
    quantized = {n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    assert set(names) <= quantized
    expected = _outputs(sim.model, inputs)
    step = sim.model.head.output_quantizers[0].get_scale()
    for i, (a, b) in enumerate(zip(ort_run(paths["qdq_onnx"], *inputs), expected)):
        assert_within(a, b, step, f"output {i}")
    fresh, _ = _sim(cell, calibrate=False)
    fresh.load_encodings(paths["encodings"], strict=True, partial=False)
    for a, b in zip(_outputs(fresh.model, inputs), expected, strict=True):
        assert torch.equal(a, b)
