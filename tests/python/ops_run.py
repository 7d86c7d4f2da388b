"""Which qsim ops a call runs (torch's profiler), and compiled tests without the compile caches.

Example::

    >>> import torchqsim
    >>> qsim_ops(lambda: torch.ops.qsim.quantize_dequantize(torch.ones(2), torch.tensor(0.1),
    ...                                                      torch.tensor(0), -128, 127))
    ['qsim::quantize_dequantize']
"""

import torch
from torch.profiler import ProfilerActivity, profile

__all__ = ["no_compile_caches", "qsim_ops"]


def qsim_ops(fn) -> list[str]:
    """The names of the qsim ops `fn()` runs, in order (the ops they call included)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return [e.name for e in prof.events() if e.name.startswith("qsim::")]


def no_compile_caches(test):
    """`test` with inductor's graph cache and AOTAutograd's cache off: a cached graph would keep
    the ops that an earlier build's autograd formulas traced into."""
    return torch._inductor.config.patch(fx_graph_cache=False)(
        torch._functorch.config.patch(enable_autograd_cache=False)(test))
