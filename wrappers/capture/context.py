"""What surrounds a forward run on the dummy input: copied inputs, torch's fused fast paths
off, buffers put back afterwards."""

import contextlib

import torch
import torch.utils._pytree as pytree
from torch import nn


def cloned(dummy_input):
    """`dummy_input` with every tensor copied (a forward that writes into its input then
    leaves the caller's tensors alone)."""
    return pytree.tree_map(lambda v: v.detach().clone() if isinstance(v, torch.Tensor) else v,
                           dummy_input)


@contextlib.contextmanager
def no_fast_paths():
    """torch's fused inference paths of ``nn.MultiheadAttention`` and
    ``nn.TransformerEncoderLayer`` off: capture records their math, op by op, and the check
    of the captured graph compares like with like."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


@contextlib.contextmanager
def preserved(model: nn.Module):
    """Within the block forward may update buffers (running statistics, counters); they are
    put back afterwards."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
