"""sim.export from one capture (torchqsim/export/one_capture.py) against two separate exports.

Oracle: the same sim exported the way it was before one capture (two dynamo exports, one with
markers, one with the quantizers: forced by making ``one_capture_applies`` False); every file
must be byte for byte the same. The models cover what the split must get right: per-channel
weight quantizers (``view`` nodes inside the quantizer that would shift the model's node names),
BatchNorm (tuple outputs whose dead ``getitem`` nodes leave gaps in the names), tied quantized
parameters (one placeholder in a capture, two initializers in the FP32 graph), a quantizer
shared by two slots, lifted constant tensors, a recurrent layer and a graph output that is a
quantizer's output.
"""

import os

import pytest
import torch
from torch import nn

from export_models import make_sim
from torchqsim import QuantizationSimModel
from torchqsim.export import sim_export


class _Tied(nn.Module):
    """Embedding and output projection sharing one weight, a tensor constant and an LSTM."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(12, 8)
        self.rnn = nn.LSTM(8, 8, batch_first=True)
        self.head = nn.Linear(8, 12, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids):
        x, _ = self.rnn(self.emb(ids) * torch.tensor([0.5]))
        return self.head(x)


def _tied_sim():
    torch.manual_seed(0)
    ids = torch.randint(0, 12, (2, 5))
    sim = QuantizationSimModel(_Tied().eval(), ids, default_param_bw=4)
    sim.compute_encodings(lambda m: m(ids))
    return sim, ids


def _shared_sim():
    """SmallCNN whose conv1 output quantizer also quantizes conv2's output."""
    sim, x = make_sim("cnn")
    sim.model.conv2.output_quantizers[0] = sim.model.conv1.output_quantizers[0]
    return sim, x


def _sim(kind):
    if kind == "tied":
        return _tied_sim()
    if kind == "shared":
        return _shared_sim()
    return make_sim(kind, config_file="per_channel")  # per-channel: views in the quantizers


def _files(sim, x, directory) -> dict:
    paths = sim.export(str(directory), "m", x)
    return {kind: open(path, "rb").read() for kind, path in paths.items() if kind != "pth"}


@pytest.mark.parametrize("kind", ["cnn_bn", "transformer", "tied", "shared"])
def test_one_capture_writes_the_files_of_two_exports(kind, tmp_path, monkeypatch):
    sim, x = _sim(kind)
    one = _files(sim, x, tmp_path)
    os.mkdir(tmp_path / "two")
    with monkeypatch.context() as patched:
        patched.setattr(sim_export, "one_capture_applies", lambda registries: False)
        two = _files(sim, x, tmp_path / "two")
    assert sorted(one) == sorted(two)
    for kind_of_file in one:
        assert one[kind_of_file] == two[kind_of_file], kind_of_file


def test_one_capture_exports_once(tmp_path, monkeypatch):
    """The one-capture path runs no separate export (which would raise here)."""
    sim, x = _sim("cnn_bn")

    def separate_export(*_, **__):
        raise AssertionError("a separate export ran")

    monkeypatch.setattr(sim_export, "export_onnx", separate_export)
    assert set(sim.export(str(tmp_path), "m", x)) >= {"onnx", "qdq_onnx", "encodings"}

