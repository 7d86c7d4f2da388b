"""torchqsim.distributed in one process, with no process group: nothing is merged, and a bad
`process_group` argument is named.

Oracles: the analyzer's own statistics before the call (they must come back unchanged) and the
documented error message. The runs on 2 ranks are in tests/python/test_distributed.py.
"""

import pytest
import torch
import torch.distributed as dist

from torchqsim.distributed import sync_statistics
from torchqsim.quantization import QuantizeDequantize, SqnrEncodingAnalyzer


def test_without_an_initialized_group_nothing_is_merged():
    assert not dist.is_initialized()
    a = SqnrEncodingAnalyzer()
    a.update_stats(torch.linspace(-1.0, 2.0, 100))
    before = {k: v.clone() for k, v in a.stats().items()}
    sync_statistics([a])
    for name, want in before.items():
        assert torch.equal(a.stats()[name], want), name


@pytest.mark.parametrize("bad", [True, "gloo", 0])
def test_bad_process_group_is_named(bad):
    q = QuantizeDequantize((), 8, symmetric=False)
    with pytest.raises(TypeError, match="process_group must be None, False or a torch"):
        with q.compute_encodings(process_group=bad):
            q(torch.randn(4))
