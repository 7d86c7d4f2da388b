"""`compute_encodings(module)`: calibrates every quantizer inside a module at once (one
quantizer alone: ``QuantizeDequantize.compute_encodings``; a whole sim:
``QuantizationSimModel.compute_encodings``)."""

import contextlib

from torch import nn

from ..distributed import sync_statistics
from .grouped_calibration import finish_calibrations, start_calibrations, stop_calibrations
from .quantizer import QuantizeDequantize

__all__ = ["compute_encodings", "calibrating"]


@contextlib.contextmanager
def compute_encodings(module: nn.Module, process_group=None):
    """Calibrates every :class:`QuantizeDequantize` in `module` on the forwards inside the block.

    Quantizers are named by their module path; on exit every quantizer that saw data gets its
    encoding, and those that saw none are listed in one error. Under ``torch.distributed`` the
    statistics of all quantizers are first merged across ranks in two collectives
    (:func:`torchqsim.distributed.sync_statistics`): every rank must run the block.

    Args:
        module: the model holding the quantizers.
        process_group: None: merge over the default group when ``torch.distributed`` is
            initialized; False: never merge (e.g. calibrating on one rank only); a
            ``ProcessGroup``: merge over it.

    Raises:
        RuntimeError: some quantizers saw no (finite) data.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 4), QuantizeDequantize((), 8, symmetric=False))
        >>> with compute_encodings(model):
        ...     _ = model(torch.randn(2, 4))
        >>> model[1].is_initialized()
        True
    """
    named = [(name, m) for name, m in module.named_modules() if isinstance(m, QuantizeDequantize)]
    for name, q in named:
        if not q.name:
            q.name = name or type(module).__name__
    with calibrating([q for _, q in named], process_group):
        yield module


@contextlib.contextmanager
def calibrating(quantizers: list, process_group=None):
    """:func:`compute_encodings` of the (named) `quantizers` themselves, without a module to
    find them in (a sim's calibration passes its activation quantizers)."""
    start_calibrations(quantizers)
    try:
        yield quantizers
    finally:  # (also when the block raises: the encodings stay as they were)
        stop_calibrations(quantizers)
    sync_statistics([q.encoding_analyzer for q in quantizers], process_group)
    failed = [f"{q.name}: {e.__cause__}" for q, e in finish_calibrations(quantizers)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(quantizers)} quantizers computed no encoding:\n  " +
                           "\n  ".join(failed))
