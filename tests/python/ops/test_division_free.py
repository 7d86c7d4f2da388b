"""The division-free qdq forms (``qsim_division_free`` in kernels/include/qsim/qdq.h): the op gives
the reference's bits with them on and off, in fp32, bf16 and fp16, in and out of place, forward
and straight-through backward; and ``QSIM_DIVISION_FREE`` sets the default."""

import os
import subprocess
import sys

import pytest
import torch

import reference
from torchqsim import _C


# Loads the op library without the rest of torchqsim (a second less) and prints the setting.
_PROBE = ("import importlib.util as u, sys, torch; spec = u.spec_from_file_location('_C', "
          "sys.argv[1]); m = u.module_from_spec(spec); spec.loader.exec_module(m); "
          "print(int(m.division_free()))")


def _division_free_in_child(env_value):
    env = {k: v for k, v in os.environ.items() if k != "QSIM_DIVISION_FREE"}
    if env_value is not None:
        env["QSIM_DIVISION_FREE"] = env_value
    out = subprocess.run([sys.executable, "-c", _PROBE, _C.__file__], env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_environment_variable_sets_the_default_and_other_values_are_ignored():
    default = _division_free_in_child(None)
    assert default in ("0", "1")
    assert _division_free_in_child("0") == "0"
    assert _division_free_in_child("1") == "1"
    assert _division_free_in_child("yes") == default


@pytest.fixture
def restore_division_free():
    before = _C.division_free()
    yield
    _C.set_division_free(before)


def _near_half_case(dtype):
    """x: every finite pattern of bf16 (fp32: the same values) or fp16; scales putting some of
    them within ulps of a half-integer (s = h / (m + 0.5), h exact in every dtype); grids of 4 to
    16 bits. Where x * (1 / s) and x / s round apart, only the fallback keeps the bits."""
    bits = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    x = bits.view(torch.float16 if dtype == torch.float16 else torch.bfloat16)
    x = x[torch.isfinite(x)].to(dtype)
    scales = [h / (m + 0.5) for h in (1.125, 1.25, 1.75) for m in (0, 1, 2, 5, 37)] + [0.05, 0.3]
    grids = [(0, -8, 7), (3, 0, 15), (0, -128, 127), (-5, -128, 127), (0, -32768, 32767)]
    return x, scales, grids


def _bits(t):
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_forward_and_backward_are_the_reference_with_division_free_on_and_off(
        dtype, restore_division_free):
    x, scales, grids = _near_half_case(dtype)
    dy = torch.ones_like(x)
    for scale in scales:
        for zp, qmin, qmax in grids:
            s = torch.tensor(scale, dtype=torch.float32)
            z = torch.tensor(zp, dtype=torch.int32)
            want = reference.quantize_dequantize(x.float(), s, z, qmin, qmax).to(dtype)
            position = torch.round(x.float() / s) + zp
            want_dx = torch.where((position >= qmin) & (position <= qmax), dy, torch.zeros_like(dy))
            for on in (False, True):
                _C.set_division_free(on)
                what = f"division_free={on} scale={scale!r} grid={(zp, qmin, qmax)}"
                y = torch.ops.qsim.quantize_dequantize(x, s, z, qmin, qmax)
                assert torch.equal(_bits(y), _bits(want)), what
                inplace = x.clone()
                torch.ops.qsim.quantize_dequantize_(inplace, s, z, qmin, qmax)
                assert torch.equal(_bits(inplace), _bits(want)), what
                xg = x.clone().requires_grad_()
                (dx,) = torch.autograd.grad(
                    torch.ops.qsim.quantize_dequantize(xg, s, z, qmin, qmax), xg, dy)
                assert torch.equal(_bits(dx), _bits(want_dx)), what
