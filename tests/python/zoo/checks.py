"""The checks every zoo model goes through (tests/python/zoo/test_zoo_*.py), each against an
oracle: the FP32 model (relative error), onnxruntime with graph optimizations off (the exported
QDQ graph), eager execution (torch.compile), the parameters before the step (QAT)."""

import contextlib
import json
import math
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.utils._pytree as pytree

from torchqsim import QuantizationSimModel
from torchqsim._forward import run_model
from torchqsim.coverage import unquantized_parameters
from torchqsim.quantization.quantizer import QuantizeDequantize
from torchqsim.quantsim.onnx_encodings import onnx_entries


def float_leaves(output) -> list[torch.Tensor]:
    """The floating tensors of a model output, in pytree order (ModelOutput fields in order)."""
    return [t for t in pytree.tree_leaves(output)
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel()]


def outputs(model, dummy_input) -> list[torch.Tensor]:
    with torch.no_grad():
        return float_leaves(run_model(model, dummy_input))


def calibrated_sim(model, dummy_input, bw: int, quant_scheme="tf",
                   **kwargs) -> QuantizationSimModel:
    """W`bw`A`bw` sim of `model`, calibrated on `dummy_input` with min-max ranges ("tf"): the zoo
    tests the capture, and tf_enhanced clips outliers by design at any bitwidth (MobileViT's
    widest SiLU output 4.4 -> 1.4: a 26 % W16A16 error that says nothing of the capture; the
    analyzers have their own tests, tests/python/quantization and tests/aimet_parity)."""
    kwargs["quant_scheme"] = quant_scheme
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, dummy_input, default_output_bw=bw,
                                   default_param_bw=bw, **kwargs)
    sim.compute_encodings(lambda m: run_model(m, dummy_input))
    return sim


def relative_error(model, sim, dummy_input) -> float:
    """Largest, over the model's floating outputs, of ||sim - fp32|| / ||fp32||."""
    errors = []
    for ref, got in zip(outputs(model, dummy_input), outputs(sim.model, dummy_input)):
        errors.append(((got - ref).norm() / ref.norm().clamp_min(1e-12)).item())
    return max(errors)


def sqnr_db(model, sim, dummy_input) -> float:
    """SQNR of the first output of the sim against the FP32 model, in dB."""
    ref, got = outputs(model, dummy_input)[0], outputs(sim.model, dummy_input)[0]
    noise = (got - ref).pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(ref.pow(2).sum().item() / noise)


def ort_outputs(path: str, dummy_input) -> list[torch.Tensor]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    values = dummy_input if isinstance(dummy_input, dict) else dict(zip(names, (
        dummy_input if isinstance(dummy_input, (tuple, list)) else (dummy_input,))))
    feed = {n: np.ascontiguousarray(values[n].numpy()) for n in names}
    return [torch.from_numpy(np.array(o)) for o in session.run(None, feed)]


def exported_qdq_outputs(sim, dummy_input) -> dict:
    """The sim exported: ``got``, the outputs of ``{prefix}_qdq.onnx`` in onnxruntime;
    ``encodings``, the ``{prefix}.encodings`` dict; ``not_in_graph``, its names that are no tensor
    of ``{prefix}.onnx``; ``without_entry`` and ``problems``, :func:`encodings_coverage`;
    ``reloaded``, per output, the bit-equal fraction of ``sim.model`` after
    ``sim.load_encodings({prefix}.encodings)`` against before (1.0: the file restores every
    encoding it holds onto the quantizer it came from)."""
    expected = outputs(sim.model, dummy_input)
    with tempfile.TemporaryDirectory() as d:
        paths = sim.export(d, "model", dummy_input)
        got = [t for t in ort_outputs(paths["qdq_onnx"], dummy_input)
               if t.is_floating_point() and t.numel()]
        with open(paths["encodings"]) as f:
            encodings = json.load(f)
        graph = onnx.load(paths["onnx"]).graph
        without_entry, problems = encodings_coverage(sim, paths["encodings"])
        sim.load_encodings(paths["encodings"])
    tensors = {i.name for i in (*graph.input, *graph.initializer)} | \
        {o for node in graph.node for o in node.output}
    named = [e["name"] for section in ("activation_encodings", "param_encodings")
             for e in encodings[section]]
    reloaded = [bit_equal_fraction(a, b) for a, b in zip(outputs(sim.model, dummy_input), expected)]
    return {"got": got, "encodings": encodings, "not_in_graph": [n for n in named if n not in tensors],
            "without_entry": without_entry, "problems": problems, "reloaded": reloaded}


def encodings_coverage(sim, path: str) -> tuple[list[str], list[str]]:
    """The enabled quantizers of `sim` that no entry of the ``{prefix}.encodings`` file at `path`
    reaches, and the entries no quantizer takes, as ``sim.load_encodings`` maps the file's names
    through ``{prefix}.onnx`` (the file's reader, torchqsim/quantsim/onnx_encodings.py: node
    scopes and initializer names, not the markers the writer placed)."""
    found, problems = onnx_entries(sim, None, path, None)
    reached = {f"{module}.{kind}_quantizers.{key}" for (module, kind, key), _, _ in found}
    return [n for n, _ in sim.quantizers() if n not in reached], problems


def bit_equal_fraction(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a == b).float().mean().item()


def qat_step_leaves_without_gradient(model, dummy_input) -> list[str]:
    """Names of the trainable tensors (weights and learnable ranges) that one backward pass
    through a range-learning sim leaves without a gradient (None or all zero; the test wants
    none), except the ranges whose zero gradient is what autograd must give: a quantizer that ran
    only under ``torch.no_grad``, or only on values already on its grid, where it is the identity
    (a zero-initialised bias or position table; a concat of one tensor that an identical quantizer
    produced): there ``round(x / s) - x / s`` is 0 and nothing clamps, so d/d(min, max) is 0. A
    gradient, not an optimizer step: on these tiny random models some range gradients are ~1e-15,
    which Adam's eps turns into no visible step."""
    sim = calibrated_sim(model, dummy_input, 8, quant_scheme="range_learning_tf_init")
    sim.model.train()
    params = {n: p for n, p in sim.model.named_parameters() if p.requires_grad}
    with _quantizer_inputs(sim.model) as seen:
        torch.manual_seed(0)
        loss = sum(o.float().pow(2).mean() for o in float_leaves(run_model(sim.model, dummy_input)))
    loss.backward()
    exempt = {q for q, calls in seen.items() if all(not grad or same for grad, same in calls)}
    return [n for n, p in params.items()
            if (p.grad is None or not p.grad.any()) and n.rsplit(".", 1)[0] not in exempt]


@contextlib.contextmanager
def _quantizer_inputs(model):
    """Per quantizer name, one ``(grad enabled, quantizer was the identity)`` pair per call."""
    seen: dict[str, list[tuple[bool, bool]]] = {}

    def record(name):
        def hook(module, args, out):
            seen.setdefault(name, []).append((torch.is_grad_enabled(), torch.equal(out, args[0])))
        return hook

    handles = [q.register_forward_hook(record(n)) for n, q in model.named_modules()
               if isinstance(q, QuantizeDequantize)]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def compiled_matches_eager(sim, dummy_input, backend: str = "inductor") -> list[float]:
    """Per output, the fraction of elements where ``torch.compile(sim.model, backend=backend)``
    equals eager: ``"inductor"`` (the default: generated kernels) or ``"aot_eager"`` (dynamo's
    capture and AOTAutograd through the ops' fake kernels, then eager kernels)."""
    torch._dynamo.reset()
    compiled = torch.compile(sim.model, backend=backend)
    eager = outputs(sim.model, dummy_input)
    got = outputs(compiled, dummy_input)
    return [bit_equal_fraction(a, b) for a, b in zip(got, eager)]


__all__ = ["float_leaves", "calibrated_sim", "relative_error", "sqnr_db", "exported_qdq_outputs",
           "encodings_coverage", "bit_equal_fraction", "qat_step_leaves_without_gradient",
           "compiled_matches_eager", "outputs", "unquantized_parameters"]
