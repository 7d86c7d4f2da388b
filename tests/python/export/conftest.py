"""Fixtures of the export tests: an onnxruntime runner (CPU, graph optimizations off)."""

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
