"""ModuleGraph: producers, consumers, model inputs/outputs and supergroup chains.

Oracle: connectivity written out by hand from the models' forward code.
"""


import pytest
import torch
from torch import nn

import torchqsim.nn as qnn
from torchqsim.graph import ModuleGraph, Producer
from torchqsim.prepare import prepare_model

from prepare_models import SmallCNN, TransformerBlock


def _types(op):
    return qnn.quantized_class(type(op.module)).onnx_types


def _foldable_bn(op):
    return isinstance(op.module, nn.BatchNorm2d)


def _src(value):
    """A Producer as (op name, output index); strings unchanged."""
    return (value.op.name, value.output_index) if isinstance(value, Producer) else value


def _wiring(graph):
    return {op.name: [_src(s) for s in op.inputs] for op in graph.ops}


def _consumers(graph):
    return {op.name: [[(c.name, i) for c, i in out] for out in op.consumers] for op in graph.ops}


def _names(chains):
    return [[op.name for op in chain] for chain in chains]


@pytest.fixture(scope="module")
def cnn():
    return ModuleGraph.from_graph_module(prepare_model(SmallCNN()))


@pytest.fixture(scope="module")
def transformer():
    return ModuleGraph.from_graph_module(prepare_model(TransformerBlock()))


def test_cnn_producers_in_execution_order(cnn):
    assert _wiring(cnn) == {
        "stem.0": ["model_input"],
        "stem.1": [("stem.0", 0)],
        "stem.2": [("stem.1", 0)],
        "block.conv1": [("stem.2", 0)],
        "block.bn1": [("block.conv1", 0)],
        "module_relu": [("block.bn1", 0)],
        "block.conv2": [("module_relu", 0)],
        "block.bn2": [("block.conv2", 0)],
        "module_add": [("block.bn2", 0), ("stem.2", 0)],   # out += x: the residual branch
        "module_relu_1": [("module_add", 0)],
        "pool": [("module_relu_1", 0)],
        "fc": [("pool", 0)],                        # through torch.flatten
    }
    assert list(_wiring(cnn)) == [op.name for op in cnn.ops]


def test_cnn_consumers_inputs_and_outputs(cnn):
    consumers = _consumers(cnn)
    assert consumers["stem.2"] == [[("block.conv1", 0), ("module_add", 1)]]
    assert consumers["block.bn2"] == [[("module_add", 0)]]
    assert consumers["pool"] == [[("fc", 0)]]
    assert consumers["fc"] == [[]]
    assert [op.name for op in cnn.ops if any(op.is_model_output)] == ["fc"]
    assert {k: [(op.name, i) for op, i in v] for k, v in cnn.model_inputs.items()} == \
        {"x": [("stem.0", 0)]}
    assert cnn.unquantized_ops == {}
    assert cnn.op("module_add").module is cnn.ops[8].module
    with pytest.raises(KeyError, match="no op named 'nope'"):
        cnn.op("nope")


def test_transformer_producers_through_data_movement(transformer):
    assert _wiring(transformer) == {
        "ln1": ["model_input"],
        "qkv": [("ln1", 0)],
        "module_matmul": [("qkv", 0), ("qkv", 0)],         # q, k: chunk/view/transpose
        "module_truediv": [("module_matmul", 0), "constant"],       # / math.sqrt(d)
        "module_softmax": [("module_truediv", 0)],
        "module_matmul_1": [("module_softmax", 0), ("qkv", 0)],     # attn @ v
        "proj": [("module_matmul_1", 0)],
        "module_add": ["model_input", ("proj", 0)],
        "module_layer_norm": [("module_add", 0)],
        "fc1": [("module_layer_norm", 0)],
        "module_gelu": [("fc1", 0)],
        "fc2": [("module_gelu", 0)],
        "module_mul": [("fc2", 0), "constant"],             # y * 0.5
        "module_add_1": [("module_add", 0), ("module_mul", 0)],
    }
    assert transformer.op("module_truediv").tensor_inputs == [True, False]
    assert transformer.op("module_matmul").tensor_inputs == [True, True]


def test_transformer_consumers_inputs_and_outputs(transformer):
    consumers = _consumers(transformer)
    assert consumers["qkv"] == [[("module_matmul", 0), ("module_matmul", 1), ("module_matmul_1", 1)]]
    assert consumers["module_add"] == [[("module_layer_norm", 0), ("module_add_1", 0)]]
    assert consumers["module_add_1"] == [[]]
    assert [op.name for op in transformer.ops if any(op.is_model_output)] == ["module_add_1"]
    assert [(op.name, i) for op, i in transformer.model_inputs["x"]] == [("ln1", 0), ("module_add", 0)]
    assert transformer.unquantized_ops == {}


def test_find_chains_skips_foldable_batchnorm(cnn):
    assert _names(cnn.find_chains(_types, ["Conv", "Relu"], skip=_foldable_bn)) == [
        ["stem.0", "stem.1", "stem.2"], ["block.conv1", "block.bn1", "module_relu"]]
    # without skipping, a BatchNorm between them breaks the chain
    assert cnn.find_chains(_types, ["Conv", "Relu"]) == []
    assert _names(cnn.find_chains(_types, ["Conv", "BatchNormalization"])) == [
        ["stem.0", "stem.1"], ["block.conv1", "block.bn1"], ["block.conv2", "block.bn2"]]
    assert _names(cnn.find_chains(_types, ["Add", "Relu"])) == [["module_add", "module_relu_1"]]


def test_find_chains_stops_at_a_branch(cnn, transformer):
    # stem.2 feeds block.conv1 and the residual add: never fused with what follows
    assert _names(cnn.find_chains(_types, ["Relu", "Conv"])) == [["module_relu", "block.conv2"]]
    assert _names(transformer.find_chains(_types, ["Gemm", "GELU"])) == [["fc1", "module_gelu"]]
    assert _names(transformer.find_chains(_types, ["MatMul", "Div", "Softmax"])) == [
        ["module_matmul", "module_truediv", "module_softmax"]]
    assert transformer.find_chains(_types, ["Add", "LayerNorm"]) == []  # add feeds add_1 too
    assert _names(transformer.find_chains(_types, ["Gemm"])) == [
        ["qkv"], ["proj"], ["fc1"], ["fc2"]]
    with pytest.raises(ValueError, match="op_list"):
        cnn.find_chains(_types, [])


def test_model_output_ends_a_chain():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            y = self.fc(x)
            return y, self.act(y)

    graph = ModuleGraph.from_graph_module(prepare_model(M()))
    assert graph.op("fc").is_model_output == [True]
    assert graph.op("fc").consumers == [[(graph.op("act"), 0)]]
    assert graph.find_chains(_types, ["Gemm", "Relu"]) == []


def test_tuple_outputs_constants_and_unquantized_ops():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
            self.fc = nn.Linear(8, 8)
            self.register_buffer("gain", torch.full((8,), 2.0))

        def forward(self, x):
            a, w = self.mha(x, x, x)
            y = self.fc(a) * self.gain + torch.ones(8)
            return torch.cumsum(y, 1) - 1.0, torch.softmax(w, -1)

    gm = prepare_model(M())
    graph = ModuleGraph.from_graph_module(gm)
    assert _wiring(graph) == {
        "mha": ["model_input"] * 3,
        "fc": [("mha", 0)],
        "module_mul": [("fc", 0), "constant"],              # a buffer
        "module_add": [("module_mul", 0), "constant"],             # torch.ones(8): made from constants
        "module_sub": ["unquantized_op", "constant"],       # cumsum is not a module
        "module_softmax": [("mha", 1)],                     # the attention weights
    }
    assert graph.op("module_mul").tensor_inputs == [True, True]
    assert graph.op("module_sub").tensor_inputs == [True, False]
    assert _consumers(graph)["mha"] == [[("fc", 0)], [("module_softmax", 0)]]
    assert graph.op("mha").is_model_output == [False, False]
    assert graph.op("module_sub").is_model_output == [True]
    assert list(graph.unquantized_ops) == ["cumsum"]
    assert [(op.name, i) for op, i in graph.model_inputs["x"]] == [
        ("mha", 0), ("mha", 1), ("mha", 2)]


def test_graph_of_quantized_wrappers_has_the_same_wiring():
    gm = prepare_model(TransformerBlock())
    before = ModuleGraph.from_graph_module(gm)
    for node in gm.graph.nodes:
        if node.op == "call_module":
            gm.set_submodule(node.target, qnn.to_quantized(gm.get_submodule(node.target)))
    after = ModuleGraph.from_graph_module(gm)
    assert _wiring(after) == _wiring(before)
    assert _consumers(after) == _consumers(before)
    assert all(isinstance(op.module, qnn.QuantizationMixin) for op in after.ops)


def test_from_graph_module_rejects_a_plain_module():
    with pytest.raises(TypeError, match="prepare_model"):
        ModuleGraph.from_graph_module(nn.Linear(2, 2))
