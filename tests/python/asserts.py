"""Comparisons for the qsim op tests whose failure messages name the first bad index and values.

Example::

    >>> assert_same(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")]))
    >>> assert_within(torch.tensor([1.0]), torch.tensor([1.1]), torch.tensor([0.2]), "y")
"""

import torch
from torch import Tensor

__all__ = ["assert_same", "assert_within", "big_copies"]

_BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
         torch.float64: torch.int64}


def _first(bad: Tensor):
    return tuple(int(i) for i in bad.nonzero()[0])


def assert_same(actual: Tensor, expected: Tensor, what: str = "result"):
    """Bit-exact equality (signed zeros included); NaN matches NaN whatever its payload.

    Stricter than ``torch.equal``, which also holds for these tensors: it tells -0 from +0.
    """
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    nan_a, nan_e = actual.isnan(), expected.isnan()
    bits = _BITS[actual.dtype]
    bad = (nan_a != nan_e) | (~nan_e & (actual.view(bits) != expected.view(bits)))
    if bad.any():
        i = _first(bad)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.numel()} elements differ; first "
                             f"at index {i}: got {actual[i].item()!r}, expected "
                             f"{expected[i].item()!r}")
    assert torch.equal(nan_a, nan_e) and torch.equal(actual[~nan_a], expected[~nan_e])


def assert_within(actual: Tensor, expected: Tensor, bound: Tensor, what: str = "result"):
    """``|actual - expected| <= bound`` element-wise, compared in float64."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = (actual.double() - expected.double()).abs()
    bad = ~(err <= bound.double())
    if bad.any():
        i = _first(bad)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.numel()} elements off; first at "
                             f"index {i}: got {actual[i].item()!r}, expected "
                             f"{expected[i].item()!r}, error {err[i].item():.3g} > bound "
                             f"{bound.double().expand_as(err)[i].item():.3g}")


def big_copies(fn, numel: int) -> list:
    """Names and input shapes of the aten copies and conversions of at least `numel` elements
    that `fn()` runs (torch's profiler): what a test of "no copy of the data" asserts empty."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    copies = ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous")
    return [(e.name, e.input_shapes) for e in prof.events() if e.name in copies
            and any(s and torch.Size(s).numel() >= numel for s in e.input_shapes)]
