"""The Grid type (wrappers/quantization/grid.py): kinds mirror the C enum, bounds come from C."""

import os
import re

import pytest

from torchqsim import functional as F
from torchqsim.quantization.grid import Grid, GridKind

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "..", "kernels", "include", "qsim",
                      "analyzers.h")


def test_kinds_mirror_the_c_enum():
    text = open(HEADER).read()
    enum = dict(re.findall(r"QSIM_GRID_(\w+)\s*=\s*(\d+)", text))
    assert {k.name: k.value for k in GridKind} == {name: int(v) for name, v in enum.items()}


@pytest.mark.parametrize("bitwidth, kind, bounds", [
    (8, GridKind.SYMMETRIC, (-128, 127)),
    (8, GridKind.STRICT_SYMMETRIC, (-127, 127)),
    (8, GridKind.UNSIGNED_SYMMETRIC, (0, 255)),
    (4, GridKind.ASYMMETRIC, (0, 15)),
    (2, GridKind.SYMMETRIC, (-2, 1)),
    (16, GridKind.ASYMMETRIC, (0, 65535)),
])
def test_known_bounds(bitwidth, kind, bounds):
    g = Grid.of(bitwidth, kind)
    assert (g.qmin, g.qmax) == bounds
    assert g.name == kind.name.lower() and g.symmetric == (kind != GridKind.ASYMMETRIC)
    if kind != GridKind.UNSIGNED_SYMMETRIC:
        assert F.grid_range(bitwidth, signed=kind != GridKind.ASYMMETRIC,
                            strict=kind == GridKind.STRICT_SYMMETRIC) == bounds


def test_grid_is_frozen_and_checked():
    g = Grid.from_flags(8, symmetric=True, strict=True)
    assert g.kind is GridKind.STRICT_SYMMETRIC
    with pytest.raises(AttributeError):
        g.qmin = 0
    for bad in (1, 17, 8.0, True):
        with pytest.raises(ValueError, match="bitwidth must be an integer from 2 to 16"):
            Grid.of(bad, GridKind.SYMMETRIC)
    with pytest.raises(ValueError, match="exclude each other"):
        Grid.from_flags(8, True, strict=True, unsigned=True)
    with pytest.raises(ValueError, match="need symmetric=True"):
        Grid.from_flags(8, False, strict=True)
