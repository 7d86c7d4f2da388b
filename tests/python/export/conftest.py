"""Fixtures of the export tests: an onnxruntime runner (CPU, graph optimizations off) and onnx's
reference evaluator (for the float4e2m1 graphs onnxruntime cannot run)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch


def _session(model):
    """An ORT session of a ModelProto, serialized bytes or a path."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _run(model, *inputs):
    """The graph's outputs (torch tensors) for positional torch inputs."""
    session = _session(model)
    feed = {i.name: np.ascontiguousarray(x.detach().numpy())
            for i, x in zip(session.get_inputs(), inputs)}
    return [torch.from_numpy(np.array(o)) for o in session.run(None, feed)]


@pytest.fixture
def ort_run():
    """``ort_run(model, *inputs) -> [outputs]``: onnxruntime, CPU, no graph optimizations."""
    return _run


def _reference_run(model, *inputs):
    """The graph's outputs (torch tensors) from ``onnx.reference.ReferenceEvaluator``."""
    from onnx.reference import ReferenceEvaluator
    evaluator = ReferenceEvaluator(model)
    feed = {name: np.ascontiguousarray(x.detach().numpy())
            for name, x in zip(evaluator.input_names, inputs)}
    return [torch.from_numpy(np.array(o)) for o in evaluator.run(None, feed)]


@pytest.fixture
def ref_run():
    """``ref_run(model, *inputs) -> [outputs]``: onnx's reference evaluator (numpy)."""
    return _reference_run
