"""Bad input to the C++ bindings that used to pass silently: each must raise an error naming
the argument (histogram ranges, histogram counts, file names)."""
import math

import pytest
import torch

import torchqsim  # noqa: F401  (loads the ops)
from torchqsim import _io
from torchqsim.quantization.grid import GridKind

OPS = torch.ops.qsim


@pytest.mark.parametrize("edges", [(0.0, math.inf), (-math.inf, 1.0), (math.nan, 1.0)])
def test_non_finite_range_is_refused(edges):
    x = torch.randn(64)
    rng = torch.tensor(edges, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"histogram: range must hold finite numbers, but range\[0\]"):
        OPS.histogram(x, rng, 8)
    with pytest.raises(ValueError, match="histogram_grow: range must hold finite numbers"):
        OPS.histogram_grow(torch.ones(8, dtype=torch.long), rng, torch.tensor(-1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="encodings_tf_enhanced: range must hold finite numbers"):
        OPS.encodings_tf_enhanced(torch.ones(8, dtype=torch.long), rng, torch.tensor(0.0),
                                  torch.tensor(1.0), 8, int(GridKind.ASYMMETRIC))


def test_non_finite_range_names_the_channel():
    rng = torch.tensor([[0.0, 1.0], [0.0, math.inf]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"range\[1\] = \[0, inf\]"):
        OPS.histogram(torch.randn(2, 16), rng, 4, 0)


def test_unset_range_still_accepted():
    counts, lo, hi, bad = OPS.histogram(torch.tensor([1.0, 2.0]), torch.zeros(2, dtype=torch.float64), 4)
    assert counts.sum().item() == 0 and lo.item() == 1.0 and hi.item() == 2.0 and bad.item() == 0


def test_negative_counts_are_refused():
    counts = torch.ones(8, dtype=torch.long)
    counts[5] = -3
    rng = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for op, extra in ((OPS.encodings_tf_enhanced, ()), (OPS.encodings_mse, ()),
                      (OPS.encodings_percentile, (99.0,))):
        with pytest.raises(ValueError, match=r"counts must be >= 0, but counts.flatten\(\)\[5\] = -3"):
            op(counts, rng, torch.tensor(0.0), torch.tensor(1.0), 8, int(GridKind.ASYMMETRIC), *extra)


def test_nul_in_file_name_is_refused(tmp_path):
    name = str(tmp_path / "a.json") + "\0b"
    with pytest.raises(ValueError, match="path: a file name cannot hold a NUL character"):
        _io.load_config(name)
    with pytest.raises(ValueError, match="source: a file name cannot hold a NUL character"):
        _io.read_encodings(name)
    with pytest.raises(ValueError, match="path: a file name cannot hold a NUL character"):
        _io.save_encodings({"version": None, "producer": None, "activation_encodings": {},
                            "param_encodings": {}, "encodings": {}, "excluded_layers": [],
                            "quantizer_args": None}, name, "1.0.0")
    assert not (tmp_path / "a.json").exists()


def test_config_error_is_still_located():
    with pytest.raises(_io.ConfigError) as e:
        _io.parse_config('{"defaults": 1}')
    assert e.value.path is not None and e.value.line == 1
    with pytest.raises(OSError):
        _io.load_config("/nonexistent/dir/config.json")
