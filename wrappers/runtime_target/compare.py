"""``sim.compare_with_runtime(inputs)``: a numerics debugger across the sim and onnxruntime.

The sim is exported (``{prefix}_qdq.onnx``, as ``sim.export`` writes it) into a temporary
directory and run in onnxruntime with its default settings (CPU execution provider, all graph
optimizations). Every quantized activation tensor of the graph (the output of a
DequantizeLinear whose scale belongs to an input or output quantizer slot) is compared with the
value that slot produces in ``sim.model`` on the same inputs. A tensor is read from onnxruntime
through a copy of the graph cut at that tensor (it is the only graph output, nodes it does not
depend on are dropped): an extra graph output on a DequantizeLinear would stop onnxruntime from
fusing its consumers, and so change what is measured.

Example::

    >>> report = sim.compare_with_runtime(x)    # doctest: +SKIP
    tensor                              bit-equal  max steps
    stem.2.output_quantizers.0           100.00 %        0
    ...
    first divergent layer: none
"""

import dataclasses
import tempfile

import numpy as np
import torch
import torch.utils._pytree as pytree

from .._forward import run_model

__all__ = ["TensorComparison", "RuntimeComparison", "compare_with_runtime"]


@dataclasses.dataclass
class TensorComparison:
    """One quantized tensor: the quantizer slot `name` that produced it in the sim, the ONNX
    tensor, the fraction of bit-equal values and the largest difference in grid steps."""

    name: str
    onnx_name: str
    bit_equal: float
    max_steps: float


@dataclasses.dataclass
class RuntimeComparison:
    """The report: `tensors` in graph order, `outputs` (bit-equal fraction per model output)
    and `first_divergent` (the first tensor not bit-equal, or None)."""

    tensors: list
    outputs: list
    first_divergent: str | None

    def __str__(self) -> str:
        rows = [f"{'tensor':<44} {'bit-equal':>10} {'max steps':>10}"]
        rows += [f"{t.name:<44} {100 * t.bit_equal:9.2f} % "
                 f"{t.max_steps:>10g}" for t in self.tensors]
        rows.append("outputs bit-equal: " + ", ".join(f"{100 * f:.2f} %" for f in self.outputs))
        rows.append(f"first divergent layer: {self.first_divergent or 'none'}")
        return "\n".join(rows)


def _slot_of(scale_name: str) -> str | None:
    """The quantizer slot path of an exported scale constant (``m.output_quantizers.0``)."""
    base = scale_name.rsplit(".lifted_tensor", 1)[0]
    return base if ("input_quantizers." in base or "output_quantizers." in base) else None


def _activation_dqs(model) -> list[tuple[str, str]]:
    """``(slot, tensor)`` of every activation DequantizeLinear, in graph order: the slot whose
    scale constant the node reads (quantizers tied together share one constant)."""
    return [(_slot_of(n.input[1]), n.output[0]) for n in model.graph.node
            if n.op_type == "DequantizeLinear" and _slot_of(n.input[1]) is not None]


def _cut_at(model, tensor: str):
    """A copy of `model` whose only output is `tensor`, without the nodes it does not need."""
    import onnx
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    producers = {o: n for n in cut.graph.node for o in n.output}
    needed, stack = set(), [tensor]
    while stack:
        node = producers.get(stack.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.input)
    keep = [n for n in cut.graph.node if id(n) in needed]
    del cut.graph.node[:]
    cut.graph.node.extend(keep)
    del cut.graph.output[:]
    cut.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT,
                                                               None))
    return cut


def _run(session_model, feed) -> list[torch.Tensor]:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the cut graphs leave initializers unused: no warnings
    session = ort.InferenceSession(session_model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    used = {i.name for i in session.get_inputs()}
    return [torch.from_numpy(np.array(o))
            for o in session.run(None, {k: v for k, v in feed.items() if k in used})]


def _feed(model, inputs) -> dict:
    names = [i.name for i in model.graph.input]
    if isinstance(inputs, dict):
        values = inputs
    else:
        values = dict(zip(names, inputs if isinstance(inputs, (tuple, list)) else (inputs,)))
    return {n: np.ascontiguousarray(values[n].detach().cpu().numpy()) for n in names}


def _sim_values(sim, inputs) -> tuple[dict[int, list], list]:
    """Per quantizer (by id: tied slots share one), the ``(slot, value)`` it produced at each
    call, in execution order; and the model outputs."""
    values: dict[int, list] = {}
    handles = []

    def keep(path, quantizer, index=None):
        def hook(module, args, out):
            value = out if index is None else (out[index] if isinstance(out, (tuple, list))
                                               else out)
            values.setdefault(id(quantizer), []).append((path, value.detach().clone()))
        return hook

    for path, quantizer in sim.quantizers():
        module_name, kind, key = path.rsplit(".", 2)
        if kind == "input_quantizers":
            handles.append(quantizer.register_forward_hook(keep(path, quantizer)))
        elif kind == "output_quantizers":
            handles.append(sim.model.get_submodule(module_name)
                           .register_forward_hook(keep(path, quantizer, int(key))))
    try:
        with torch.no_grad():
            out = run_model(sim.model, inputs)
    finally:
        for h in handles:
            h.remove()
    return values, out


def _compare(a: torch.Tensor, b: torch.Tensor, scale: float) -> tuple[float, float]:
    if a.shape != b.shape:
        return 0.0, float("inf")
    equal = (a == b).float().mean().item()
    return equal, ((a - b).abs().max().item() / scale) if a.numel() else 0.0


def compare_with_runtime(sim, inputs, verbose: bool = True) -> RuntimeComparison:
    """Compares ``sim.model`` with onnxruntime (default settings) on `inputs`, tensor by tensor.

    Args:
        sim: a calibrated ``QuantizationSimModel`` (in either target).
        inputs: the model input(s), as for ``sim.export``'s ``dummy_input``.
        verbose: print the report.

    Returns:
        :class:`RuntimeComparison`.
    """
    import onnx
    with tempfile.TemporaryDirectory() as d:
        model = onnx.load(sim.export(d, "compare", inputs)["qdq_onnx"])
    feed = _feed(model, inputs)
    values, out = _sim_values(sim, inputs)
    scales = {i.name: i for i in model.graph.initializer}
    dq_scale = {n.output[0]: n.input[1] for n in model.graph.node
                if n.op_type == "DequantizeLinear"}
    tensors, calls = [], {}
    for slot, name in _activation_dqs(model):
        quantizer = id(sim.model.get_submodule(slot))
        call = calls[quantizer] = calls.get(quantizer, -1) + 1
        produced = values.get(quantizer, [])
        if call >= len(produced):
            continue
        got = _run(_cut_at(model, name), feed)[0]
        init = scales.get(dq_scale[name])
        scale = float(onnx.numpy_helper.to_array(init).max()) if init is not None else 1.0
        path, value = produced[call]
        tensors.append(TensorComparison(path, name, *_compare(value, got, scale)))
    runtime = [t for t in _run(model, feed) if t.is_floating_point()]
    mine = [t for t in pytree.tree_leaves(out)
            if isinstance(t, torch.Tensor) and t.is_floating_point()]
    outputs = [_compare(a, b, 1.0)[0] for a, b in zip(mine, runtime)]
    first = next((t.name for t in tensors if t.bit_equal < 1.0), None)
    report = RuntimeComparison(tensors, outputs, first)
    if verbose:
        print(report)
    return report
