"""Deployment-exact simulation: the sim computes what onnxruntime computes (issue 20).

``sim.set_target("onnxruntime")`` makes the quantized modules that onnxruntime's CPU execution
provider fuses into integer kernels at its default optimization level (QLinearConv, QGemm,
QLinearMatMul, QLinearAdd, QLinearMul, QLinearSoftmax, MatMulNBits; :mod:`.groups` says which)
compute with onnxruntime's integer arithmetic (:mod:`.arithmetic`), and the LayerNorm, Softmax
and GELU modules onnxruntime runs as float kernels compute those bit for bit (:mod:`.floatops`),
as do its float Conv and Gemm (:mod:`.floatconv`);
``sim.set_target("reference")`` restores the float reference semantics of Q/DQ (what
onnxruntime computes with graph optimizations off). ``export`` is the same in both.
``sim.compare_with_runtime(inputs)`` (:mod:`.compare`) runs the exported model in onnxruntime
and reports, per quantized tensor, how much of the sim matches. Design and the onnxruntime rules
replicated: docs/runtime_target.md.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.quantsim import QuantizationSimModel
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).eval()
    >>> x = torch.randn(1, 3, 8, 8)
    >>> sim = QuantizationSimModel(model, x, quant_scheme="tf")
    >>> sim.compute_encodings(lambda m: m(x))
    >>> set_target(sim, "onnxruntime")
    ['0']
    >>> with torch.no_grad():
    ...     y = sim.model(x)
    >>> set_target(sim, "reference")
    []
"""

import contextlib

from . import floatconv, floatops, forwards, instance_forward
from .groups import FusedGroup, find_groups

__all__ = ["TARGETS", "set_target", "reference_semantics", "FusedGroup", "find_groups"]

#: The targets :func:`set_target` accepts.
TARGETS = ("reference", "onnxruntime")


def set_target(sim, target: str, saturation: bool | None = None) -> list[str]:
    """Switches `sim` (a ``QuantizationSimModel``) to `target`; returns the fused modules.

    Args:
        sim: the sim; ``sim.model`` must be in eval mode for ``"onnxruntime"``.
        target: ``"reference"`` (float Q/DQ semantics) or ``"onnxruntime"``.
        saturation: whether the simulated CPU's u8 x s8 kernels add product pairs in int16
            with saturation (x86 AVX2/AVX512BW without VNNI); None (default) reads it from this
            CPU (:func:`.arithmetic.saturates_u8s8`), so that the sim matches onnxruntime here.

    Returns:
        The paths of the modules that now compute onnxruntime's fused integer kernels (empty
        for ``"reference"``).

    Raises:
        ValueError: an unknown `target`, or ``"onnxruntime"`` on a model in train mode (the
            target mode has no gradients; train with the reference semantics).
    """
    if target not in TARGETS:
        raise ValueError(f"set_target: target must be one of {TARGETS}, got {target!r}")
    _uninstall(sim.model)
    sim._target, sim._saturation = target, saturation
    if target == "reference":
        return []
    if sim.model.training:
        sim._target = "reference"
        raise ValueError("set_target('onnxruntime'): sim.model is in train mode; the target "
                         "mode is for evaluation and calibration (call sim.model.eval())")
    return _install(sim, saturation)


def _install(sim, saturation) -> list[str]:
    """Installs the fused groups' and the float kernels' forwards; returns the fused modules."""
    groups = find_groups(sim.graph, saturation, getattr(sim, "_input_ranks", None))
    instance_forward.install(sim.model, groups, forwards.target_forward)
    instance_forward.install(sim.model, floatops.find_float_ops(sim.graph, groups),
                             floatops.float_forward)
    instance_forward.install(sim.model, floatconv.find_float_convs(sim.graph, groups),
                             floatconv.float_conv_forward)
    return list(groups)


def _uninstall(model) -> None:
    instance_forward.uninstall(model, forwards.target_forward)
    instance_forward.uninstall(model, floatops.float_forward)
    instance_forward.uninstall(model, floatconv.float_conv_forward)


@contextlib.contextmanager
def reference_semantics(sim):
    """Within the block, `sim` computes the reference semantics whatever its target (what
    ``sim.export`` traces); the target is restored on exit."""
    target = getattr(sim, "_target", "reference")
    if target == "reference":
        yield
        return
    _uninstall(sim.model)
    try:
        yield
    finally:
        _install(sim, getattr(sim, "_saturation", None))
