"""onnxruntime as users deploy it (CPU, default optimizations unless told otherwise) on a sim's
exported ``_qdq.onnx``: the oracle of the target-mode tests, with the graph onnxruntime ran."""

import functools
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch


@functools.cache
def cpu_flags() -> frozenset:
    """The Linux CPU flags of this machine (empty when /proc/cpuinfo cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            return frozenset(next((line.split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def needs_cpu(flag: str, kernel: str):
    """A skip mark for a test whose onnxruntime oracle runs `kernel` as MLAS's `flag` variant,
    the one the target mode replicates (docs/runtime_target.md): on a CPU without `flag`
    onnxruntime runs another variant, which the target mode does not replicate."""
    return pytest.mark.skipif(flag not in cpu_flags(), reason=f"{kernel}: the target mode "
                              f"replicates MLAS's {flag} kernel; onnxruntime runs another on "
                              f"this CPU")


def run_optimized(sim, inputs, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL) -> tuple:
    """``(outputs, nodes)``: the outputs (torch tensors) of `sim`'s exported ``_qdq.onnx`` in
    onnxruntime at `level` on `inputs` (a tensor, a tuple of positional tensors or a dict of
    named ones), and the nodes of the graph onnxruntime optimized."""
    with tempfile.TemporaryDirectory() as d:
        path = sim.export(d, "model", inputs)["qdq_onnx"]
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.optimized_model_filepath = f"{d}/optimized.onnx"
        options.log_severity_level = 3
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        values = [inputs[n] for n in names] if isinstance(inputs, dict) else \
            [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
        outputs = session.run(None, {n: v.numpy() for n, v in zip(names, values)})
        nodes = list(onnx.load(f"{d}/optimized.onnx").graph.node)
    return [torch.from_numpy(np.array(o)) for o in outputs], nodes
