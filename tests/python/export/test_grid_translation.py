"""The ONNX translation of ``qsim::zero_point`` (torchqsim.export.grid_translation) against the op.

A module computing zero points from graph inputs is exported with the dynamo exporter and run in
onnxruntime (graph optimizations off): the outputs must equal the C rule bit for bit on every
grid kind. An exported quantizer's zero point comes from its min/max initializers, so the
exporter's optimizer folds those nodes into a constant: the QDQ graph holds none of them.
"""

import pytest
import torch

from asserts import assert_same
from torchqsim.export import QDQ_TRANSLATION_TABLE
from torchqsim.export.onnx_graph import export_onnx
from torchqsim.quantization import QuantizeDequantize
from torchqsim.quantization.grid import Grid, GridKind


class _ZeroPoint(torch.nn.Module):
    def __init__(self, grid: Grid):
        super().__init__()
        self.grid = grid

    def forward(self, lo, scale):
        return self.grid.zero_point(lo, scale)


def _export(module, *inputs):
    program = torch.onnx.export(module.eval(), inputs, dynamo=True, opset_version=21,
                                verbose=False, optimize=False,
                                custom_translation_table=QDQ_TRANSLATION_TABLE)
    return program.model_proto


@pytest.mark.parametrize("kind", list(GridKind))
@pytest.mark.parametrize("bitwidth", [4, 8, 16])
def test_onnx_zero_point_equals_the_c_rule(kind, bitwidth, ort_run):
    grid = Grid.of(bitwidth, kind)
    g = torch.Generator().manual_seed(bitwidth)
    lo = torch.cat([torch.randn(3000, generator=g) * 4, torch.tensor([-2.5, -3.5, 0.5, -1e30])])
    scale = torch.cat([(torch.rand(3000, generator=g) * 8 + 1e-4) / (grid.qmax - grid.qmin),
                       torch.tensor([1.0, 1.0, 1.0, 1e27])])
    proto = _export(_ZeroPoint(grid), lo, scale)
    (got,) = ort_run(proto, lo, scale)
    assert_same(got, grid.zero_point(lo, scale))


def test_an_exported_quantizer_holds_a_folded_zero_point(ort_run):
    q = QuantizeDequantize((4, 1), 8, symmetric=False)
    q.set_range(torch.tensor([[-1.0], [-0.3], [0.2], [-5.0]]), torch.tensor([[1.0], [2], [3], [4]]))
    x = torch.randn(4, 10) * 3
    with torch.no_grad():
        proto = export_onnx(q.eval(), (x,), "the quantizer")
    assert {n.op_type for n in proto.graph.node} == {"QuantizeLinear", "DequantizeLinear"}
    (got,) = ort_run(proto, x)
    assert_same(got, q(x).detach())
