"""constant_qparams: an exported quantizer holds its scale and zero point as constants (no
recomputation from min/max in the graph) and computes what eager computes, bit for bit."""

import torch
from torch import nn

from torchqsim.export.constant_qparams import constant_qparams
from torchqsim.quantization import QuantizeDequantize


def _calibrated(shape, symmetric):
    torch.manual_seed(0)
    q = QuantizeDequantize(shape, 8, symmetric=symmetric)
    with q.compute_encodings():
        q(torch.randn(6, 4) * 3)
    return q


def _graph_ops(module, x):
    program = torch.export.export(module, (x,), strict=False)
    return [str(n.target) for n in program.graph.nodes if n.op == "call_function"]


def test_graph_holds_only_the_quantize_dequantize():
    x = torch.randn(6, 4)
    for shape, symmetric in (((), False), ((4,), True), ((4,), False)):
        q = _calibrated(shape, symmetric)
        with torch.no_grad():
            assert "qsim.zero_point.default" in _graph_ops(q, x)
            with constant_qparams(q):
                ops = _graph_ops(q, x)
                program = torch.export.export(q, (x,), strict=False)
            assert "qsim.zero_point.default" not in ops, ops
            assert "aten.sub.Tensor" not in ops and "aten.div.Tensor" not in ops, ops
            assert torch.equal(program.module()(x), q(x)), (shape, symmetric)


def test_export_lifts_no_quantizer_state_and_the_state_comes_back():
    # The quantizer's min/max, flag and analyzer statistics are no graph inputs of the export;
    # the model's own weight is; everything is back (the same tensors) after the block.
    q = _calibrated((4,), False)
    model = nn.Sequential(nn.Linear(4, 4), q)
    before = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    assert any(n.startswith("1.encoding_analyzer.") for n in before)
    x = torch.randn(6, 4)
    with torch.no_grad():
        with constant_qparams(model):
            program = torch.export.export(model, (x,), strict=False)
        assert sorted(program.state_dict) == ["0.bias", "0.weight"]
        assert torch.equal(program.module()(x), model(x))
    after = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)


def test_constants_are_dropped_on_exit_also_after_an_error():
    q = _calibrated((), False)
    model = nn.Sequential(q)
    try:
        with constant_qparams(model):
            assert "_constant_qparams" in q.__dict__
            raise KeyError("boom")
    except KeyError:
        pass
    assert "_constant_qparams" not in q.__dict__
    assert {n for n, _ in q.named_parameters()} == {"min", "max"}
    assert "encoding_analyzer" in dict(q.named_children())
    q.set_range(-1.0, 1.0)  # the encoding now in use is the new one
    fresh = QuantizeDequantize((), 8, symmetric=False)
    fresh.set_range(-1.0, 1.0)
    x = torch.linspace(-3, 3, 101)
    with torch.no_grad():
        assert torch.equal(q(x), fresh(x))


def test_uninitialized_quantizers_are_left_alone():
    q = QuantizeDequantize((), 8, symmetric=False)
    with constant_qparams(q):
        assert "_constant_qparams" not in q.__dict__
