"""Calibration: parameter encodings from the parameters, activation encodings from the batches
a user callback runs (``QuantizationSimModel.compute_encodings``).

The functions take the :class:`~torchqsim.quantsim.QuantizationSimModel`; a slot that its
module reached but never fed a floating tensor is disabled in the sim's plan.
"""

import contextlib
import inspect
import warnings
from typing import Callable

from torch import nn

from ..quantization.block_float_quantizer import BlockFloatQuantizeDequantize
from ..quantization.param_quantizer import is_frozen
from ..quantization.calibration import calibrating
from ..quantization.grouped_calibration import (finish_calibrations, start_calibrations,
                                                 stop_calibrations)
from ..quantization.quantizer import QuantizeDequantize

__all__ = ["calibrate_activations", "compute_param_encodings", "set_percentile"]


def set_percentile(sim, percentile: float) -> None:
    """Sets p of every ``percentile`` analyzer of the sim, and of those created later."""
    sim._percentile = float(percentile)
    for _, q in sim.quantizers():
        analyzer = getattr(q, "encoding_analyzer", None)
        if hasattr(analyzer, "set_percentile"):
            analyzer.set_percentile(percentile)


def compute_param_encodings(sim, qmodules=None) -> None:
    """Computes every (non-frozen) parameter quantizer's encoding from its parameter now.

    `qmodules`: ``list(sim.named_qmodules())`` when the caller has it (one walk of the model
    per ``compute_encodings``). A quantizer shared by several parameters gets the encoding of
    the last one, as when each was calibrated in turn."""
    plain = {}
    for _, module in sim.named_qmodules() if qmodules is None else qmodules:
        for pname, q in module.param_quantizers.items():
            if isinstance(q, QuantizeDequantize) and not is_frozen(q):
                plain[id(q)] = (q, getattr(module, pname))
            elif isinstance(q, BlockFloatQuantizeDequantize):  # NVFP4's tensor scale
                with q.compute_encodings():
                    q(getattr(module, pname))
    quantizers = [q for q, _ in plain.values()]
    start_calibrations(quantizers)
    try:
        for q, param in plain.values():
            q(param)
    finally:
        stop_calibrations(quantizers)
    failed = finish_calibrations(quantizers)
    if failed:
        raise failed[0][1]


@contextlib.contextmanager
def _block_statistics(qmodules):
    """Within the block, every activation block-format quantizer of the ``(name, module)`` pairs
    `qmodules` records its statistics (NVFP4's largest magnitude); they need no encoding
    otherwise."""
    with contextlib.ExitStack() as stack:
        for name, module in qmodules:
            for q in (*module.input_quantizers, *module.output_quantizers):
                if isinstance(q, BlockFloatQuantizeDequantize):
                    stack.enter_context(q.compute_encodings())
        yield


def _activation_quantizers(qmodules):
    """Every non-frozen activation quantizer of the ``(name, module)`` pairs `qmodules` once (a
    shared one at its first slot)."""
    seen = set()
    for name, module in qmodules:
        for kind, slots in (("input_quantizers", module.input_quantizers),
                            ("output_quantizers", module.output_quantizers)):
            for i, q in enumerate(slots):
                if isinstance(q, QuantizeDequantize) and not is_frozen(q) and id(q) not in seen:
                    seen.add(id(q))
                    yield name, module, kind, i, q


def calibrate_activations(sim, callback, args, tqdm, qmodules=None) -> None:
    """Runs `callback` with every non-frozen activation quantizer observing, counting forward
    calls on a `tqdm` bar; reports the quantizers left without an encoding. `qmodules` as in
    :func:`compute_param_encodings`.

    Raises:
        RuntimeError: the callback's own error, or quantizers that got no encoding (listed).
    """
    qmodules = list(sim.named_qmodules()) if qmodules is None else qmodules
    targets = list(_activation_quantizers(qmodules))
    for name, _, kind, i, q in targets:
        label = f"{name}.{kind}.{i}"
        if q.name != label:  # (nn.Module.__setattr__ costs a microsecond or two)
            q.name = label
    called: set[str] = set()
    hooks = [m.register_forward_pre_hook(lambda mod, a, n=n: called.add(n))
             for n, m in qmodules]
    bar = tqdm(desc="compute_encodings", unit=" forward", disable=None, leave=False)
    hooks.append(sim.model.register_forward_hook(lambda *a: bar.update(1)))
    finished = False
    try:
        with calibrating([q for *_, q in targets], process_group=None), \
                _block_statistics(qmodules):
            _run_callback(callback, sim.model, args)
            finished = True
    except RuntimeError:
        if not finished:
            raise  # the callback's own error
        _report_uncalibrated(sim, targets, called)
    finally:
        bar.close()
        for h in hooks:
            h.remove()


def _report_uncalibrated(sim, targets, called: set) -> None:
    failed = []
    for name, *_, q in targets:
        if q.is_initialized():
            continue
        skipped = int(q.encoding_analyzer.nonfinite.sum())
        if name in called and not skipped:
            # The module ran but never passed a floating tensor through this slot.
            _disable(sim, q)
            warnings.warn(f"{q.name} received no floating tensor: disabled", stacklevel=4)
        elif skipped:
            failed.append(f"{q.name}: saw only non-finite values ({skipped} NaN/Inf)")
        else:
            failed.append(f"{q.name}: module {name!r} was not called by "
                          f"forward_pass_callback")
    if failed:
        raise RuntimeError(f"compute_encodings: {len(failed)} quantizers got no encoding:\n  "
                           + "\n  ".join(failed))


def _disable(sim, q) -> None:
    """Empties every activation slot that holds `q` (a quantizer may serve an input and an
    output, e.g. a ReLU's) in its module and in the sim's plan."""
    for name, module in sim.named_qmodules():
        spec = sim._specs.get(name)
        kinds = () if spec is None else (("input_quantizers", spec.inputs),
                                          ("output_quantizers", spec.outputs))
        for kind, specs in kinds:
            slots = getattr(module, kind)
            for i, held in enumerate(slots):
                if held is q:
                    slots[i] = None
                    specs[i].enabled = False


def _run_callback(callback: Callable, model: nn.Module, args) -> None:
    if args is None:
        try:
            params = inspect.signature(callback).parameters.values()
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD)]
            if len(positional) == 1 and not any(p.kind == p.VAR_POSITIONAL for p in params):
                callback(model)
                return
        except (TypeError, ValueError):
            pass
    callback(model, args)
