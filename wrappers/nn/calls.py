"""Which quantized modules ran within a block (:func:`recorded_calls`).

Calibration asks it of the modules whose quantizers got no data, to tell a module that ran without
feeding a slot a floating tensor (the slot is disabled) from one the callback never reached (an
error). A forward pre-hook on every module would answer too, but a hook takes each call of its
module off ``nn.Module``'s fast path: ~1.3 us a call, ~0.6 ms of a Llama-style decoder's
``compute_encodings`` over four batches (benchmarks/notes/issue17.md, twenty-first session).

:meth:`QuantizationMixin.forward <torchqsim.nn.base.QuantizationMixin.forward>` adds its module
to every open block's set. A class that overrides ``forward`` without calling it is not seen:
callers hook those.
"""

import contextlib

__all__ = ["ACTIVE", "recorded_calls"]

#: The sets of the open :func:`recorded_calls` blocks (empty outside them: one truth test a call).
ACTIVE: list[set] = []


@contextlib.contextmanager
def recorded_calls():
    """Within the block, the set it yields collects every module whose
    ``QuantizationMixin.forward`` runs, in any thread (blocks may overlap: each gets every call
    made while it is open).

    Example::

        >>> import torch
        >>> from torchqsim.nn import QuantizedLinear
        >>> m = QuantizedLinear(2, 2)
        >>> with recorded_calls() as ran:
        ...     _ = m(torch.ones(1, 2))
        >>> m in ran, ACTIVE
        (True, [])
    """
    ran: set = set()
    ACTIVE.append(ran)
    try:
        yield ran
    finally:  # (by identity: list.remove would compare sets by their contents)
        del ACTIVE[next(i for i, s in enumerate(ACTIVE) if s is ran)]
