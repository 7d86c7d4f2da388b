"""`compute_encodings(module)`: calibrates every quantizer inside a module at once (one
quantizer alone: ``QuantizeDequantize.compute_encodings``; a whole sim:
``QuantizationSimModel.compute_encodings``)."""

import contextlib

from torch import nn

from ..distributed import sync_statistics
from .grouped_calibration import finish_calibrations, start_calibrations
from .quantizer import QuantizeDequantize

__all__ = ["compute_encodings"]


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
    quantizers = [q for _, q in named]
    for name, q in named:
        q.name = q.name or name or type(module).__name__
    start_calibrations(quantizers)
    try:
        yield module
    except BaseException:
        for q in quantizers:
            q._calibrating = False
        raise
    for q in quantizers:
        q._calibrating = False
    sync_statistics([q.encoding_analyzer for q in quantizers], process_group)
    failed = [f"{q.name}: {e.__cause__}" for q, e in finish_calibrations(quantizers)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(quantizers)} quantizers computed no encoding:\n  " +
                           "\n  ".join(failed))
