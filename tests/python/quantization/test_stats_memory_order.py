"""Per-tensor statistics of a dense tensor of any strides read its memory as it lies
(bindings/stats_args.cpp ``in_memory_order``): a transposed activation (attention's
``q.transpose(1, 2)``, ``k.transpose(-1, -2)``, a channels-last conv output) is not copied, and
every statistic is the bits the same values give in contiguous order, which the ops' own tests
check against torch. Oracle: each op or analyzer on ``x.contiguous()``; the detector of copies is
tests/python/asserts.py's ``big_copies`` (torch's profiler).
"""

import math

import pytest
import torch

from asserts import big_copies
from torchqsim.quantization import (MinMaxEncodingAnalyzer, MseEncodingAnalyzer,
                                    PercentileEncodingAnalyzer, SqnrEncodingAnalyzer)
from torchqsim.quantization.tf_enhanced import TfEnhancedEncodingAnalyzer

ops = torch.ops.qsim


def _layouts(seed, dtype):
    """(name, dense non-contiguous tensor) pairs with zeros of both signs, NaN, +-Inf."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(4, 6, 40, 8, generator=g)
    flat = base.view(-1)
    flat[3], flat[77], flat[500], flat[901], flat[902] = math.nan, math.inf, -math.inf, -0.0, 0.0
    base = base.to(dtype)
    return [("transposed", base.transpose(1, 2)),
            ("last two swapped", base.transpose(-1, -2)),
            ("channels last", base.contiguous(memory_format=torch.channels_last)),
            ("permuted", base.permute(3, 1, 0, 2))]


def _bits(t):
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def _assert_same(got: dict, want: dict, where: str):
    for name, w in want.items():
        g = got[name]
        diff = (_bits(g) != _bits(w)).flatten().nonzero()
        assert diff.numel() == 0, f"{where}: {name}[{int(diff[0])}] " \
                                  f"{g.flatten()[diff[0]]} != {w.flatten()[diff[0]]}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_ops_read_a_dense_tensor_as_it_lies(dtype):
    rng = torch.tensor([-2.0, 3.0], dtype=torch.float64)
    for name, x in _layouts(1, dtype):
        assert not x.is_contiguous()
        c = x.contiguous()
        calls = {"minmax": lambda t: ops.minmax(t, None),
                 "histogram": lambda t: ops.histogram(t, rng, 128, None)}
        for op, call in calls.items():
            _assert_same(dict(enumerate(call(x))), dict(enumerate(call(c))), f"{name} {op}")
            assert big_copies(lambda: call(x), x.numel()) == [], f"{name} {op} copied x"
        folded = [torch.tensor(math.inf), torch.tensor(-math.inf), torch.tensor(0)]
        want = [torch.tensor(math.inf), torch.tensor(-math.inf), torch.tensor(0)]
        assert big_copies(lambda: ops.minmax_fold(x, *folded, None), x.numel()) == []
        ops.minmax_fold(c, *want, None)
        _assert_same(dict(enumerate(folded)), dict(enumerate(want)), f"{name} minmax_fold")


@pytest.mark.parametrize("make", [MinMaxEncodingAnalyzer, TfEnhancedEncodingAnalyzer,
                                  SqnrEncodingAnalyzer, PercentileEncodingAnalyzer,
                                  MseEncodingAnalyzer])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_per_tensor_analyzers_see_the_same_statistics(make, dtype):
    """Batch by batch (a first batch, then grown and shrunk ones), every statistic buffer of an
    analyzer fed the strided tensors is the bits of one fed their contiguous copies."""
    ours, ref = make(()), make(())
    for k, (name, x) in enumerate(_layouts(2, dtype)):
        scaled = x * (1.0 + 2 * k) if k % 2 == 0 else x * 0.5
        if k == 0 and dtype == torch.float32:  # (tf_enhanced's kernels widen 16-bit data)
            assert big_copies(lambda: ours.update_stats(scaled), x.numel()) == [], name
        else:
            ours.update_stats(scaled)
        ref.update_stats(scaled.contiguous())
        _assert_same(ours.stats(), ref.stats(), f"{make.__name__} batch {k} ({name})")


def test_a_sliced_tensor_is_still_read_in_its_own_order():
    """A tensor that is not dense (a slice) is copied as before, and per channel the layout is
    still made contiguous: same statistics as the contiguous copy."""
    x = torch.randn(8, 50, generator=torch.Generator().manual_seed(3))[:, ::3]
    assert x.untyped_storage().nbytes() > x.numel() * x.element_size()  # not dense
    _assert_same(dict(enumerate(ops.minmax(x, None))), dict(enumerate(ops.minmax(x.contiguous(), None))),
                 "slice")
    t = torch.randn(5, 7, generator=torch.Generator().manual_seed(4)).t()
    _assert_same(dict(enumerate(ops.minmax(t, 1))), dict(enumerate(ops.minmax(t.contiguous(), 1))),
                 "per channel of a transposed tensor")
