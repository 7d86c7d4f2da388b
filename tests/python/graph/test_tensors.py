"""torchqsim.graph.tensors: `reads_metadata`, and its two users (preparation's parameter
wrapping and `coverage.unquantized_parameters`).

Oracle: which reads touch a tensor's values, written out by hand from the traced code.
"""

import torch
from torch import fx, nn

from torchqsim.coverage import unquantized_parameters
from torchqsim.graph import reads_metadata
from torchqsim.nn import QuantizationMixin, QuantizedLinear
from torchqsim.nn.functional_modules import Parameter
from torchqsim.prepare import prepare_model


def _users(fn):
    gm = fx.symbolic_trace(fn)
    x = next(n for n in gm.graph.nodes if n.op == "placeholder")
    return {(n.op, n.target if n.op == "call_method" else n.args[1] if n.target is getattr
             else n.target.__name__): reads_metadata(n) for n in x.users}


def test_metadata_reads_are_told_from_value_reads():
    users = _users(lambda x: (x.shape, x.dtype, x.device, x.ndim, x.layout, x.size(0), x.dim(),
                              x.numel(), x.stride(), x.is_contiguous(), x.is_floating_point(),
                              x.sum(), x.item(), x.tolist(), x.T, torch.relu(x)))
    values = {k: v for k, v in users.items() if not v}
    assert set(values) == {("call_method", "sum"), ("call_method", "item"),
                           ("call_method", "tolist"), ("call_function", "T"),
                           ("call_function", "relu")}
    assert sum(users.values()) == 11


class _ShapeOfWeight(nn.Module):
    """Uses `w` for its values and `v` only for its shape and dtype."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.v = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x * self.w + torch.zeros(self.v.shape[0] - 1, dtype=self.v.dtype).sum()


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, m, name):
        return isinstance(m, QuantizationMixin) or super().is_leaf_module(m, name)


class _ReadsWeight(nn.Module):
    """A quantized linear whose weight is also read outside it: for its shape, or its values."""

    def __init__(self, values: bool):
        super().__init__()
        self.lin, self.values = QuantizedLinear(3, 3), values

    def forward(self, x):
        w = self.lin.weight
        return self.lin(x) + (w.sum() if self.values else w.shape[0])


def _traced(model):
    return fx.GraphModule(model, _LeafTracer().trace(model))


def test_coverage_ignores_a_weight_read_only_for_its_shape():
    assert unquantized_parameters(_traced(_ReadsWeight(values=False))) == []
    assert unquantized_parameters(_traced(_ReadsWeight(values=True))) == ["lin.weight"]


def test_preparation_wraps_only_parameters_whose_values_are_used():
    model = _ShapeOfWeight()
    gm = prepare_model(model)
    wrapped = [m.weight for m in gm.modules() if isinstance(m, Parameter)]
    assert len(wrapped) == 1 and wrapped[0] is model.w
    # v is still read by a get_attr node, for its shape and dtype only
    assert any(n.op == "get_attr" and n.target == "v" for n in gm.graph.nodes)
    x = torch.randn(2, 3)
    torch.testing.assert_close(gm(x), model(x), rtol=0, atol=0)
