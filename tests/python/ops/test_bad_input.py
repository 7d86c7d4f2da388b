"""Bad arguments to the qdq ops raise the documented exception type with a message that names the
op, the argument and, for bad values, the flat index and the value (bindings/qdq_args.cpp:
TORCH_CHECK_VALUE -> ValueError, TORCH_CHECK_TYPE -> TypeError, TORCH_CHECK_INDEX -> IndexError).

Every case also runs through the backward op of the same family where the argument is shared,
since the backward ops check their arguments with the same code.
"""

import math
import re

import pytest
import torch

import torchqsim.functional as F
from asserts import assert_same

ops = torch.ops.qsim
X = torch.linspace(-1, 1, 24).reshape(4, 6)
S, Z = torch.tensor(0.1), torch.tensor(0)


def _qdq(x=X, scale=S, zero_point=Z, qmin=-128, qmax=127, axis=None, block_size=None):
    return lambda: ops.quantize_dequantize(x, scale, zero_point, qmin, qmax, axis, block_size)


def _qdq_backward(x=X, scale=S, zero_point=Z, qmin=-128, qmax=127, axis=None, block_size=None):
    return lambda: ops.quantize_dequantize_backward(torch.ones(x.shape), x, scale, zero_point,
                                                    qmin, qmax, axis, block_size, True)


# id: (keyword arguments of quantize_dequantize, exception type, exact message after "<op>: ")
QDQ_CASES = {
    "x-int": (dict(x=X.int()), TypeError, "x must be float32, float16 or bfloat16, got Int"),
    "x-float64": (dict(x=X.double()), TypeError,
                  "x must be float32, float16 or bfloat16, got Double"),
    "scale-int": (dict(scale=torch.tensor(1)), TypeError,
                  "scale must be a floating tensor, got Long"),
    "scale-zero": (dict(scale=torch.tensor(0.0)), ValueError,
                   "scale must be finite and > 0, but scale.flatten()[0] = 0"),
    "scale-negative-at-2": (dict(scale=torch.tensor([0.1, 0.2, -1.0, 0.1]),
                                 zero_point=torch.zeros(4), axis=0), ValueError,
                            "scale must be finite and > 0, but scale.flatten()[2] = -1"),
    "scale-nan-at-5": (dict(scale=torch.tensor([[0.1, 0.1, 0.1], [0.1, 0.1, math.nan]]),
                            zero_point=torch.zeros(2, 3), axis=0, block_size=2), ValueError,
                       "scale must be finite and > 0, but scale.flatten()[5] = nan"),
    "scale-inf": (dict(scale=torch.tensor(math.inf)), ValueError,
                  "scale must be finite and > 0, but scale.flatten()[0] = inf"),
    "scale-empty": (dict(scale=torch.ones(0), zero_point=torch.zeros(0)), ValueError,
                    "scale is empty"),
    "zero-point-above-qmax": (dict(zero_point=torch.tensor(128)), ValueError,
                              "zero_point must hold integers within [qmin, qmax], but "
                              "zero_point.flatten()[0] = 128"),
    "zero-point-below-qmin-at-1": (dict(scale=torch.ones(4), zero_point=torch.tensor([0, -1, 0, 0]),
                                        qmin=0, qmax=255, axis=0), ValueError,
                                   "zero_point must hold integers within [qmin, qmax], but "
                                   "zero_point.flatten()[1] = -1"),
    "zero-point-fraction": (dict(zero_point=torch.tensor(0.5)), ValueError,
                            "zero_point must hold integers within [qmin, qmax], but "
                            "zero_point.flatten()[0] = 0.5"),
    "zero-point-nan": (dict(zero_point=torch.tensor(math.nan)), ValueError,
                       "zero_point must hold integers within [qmin, qmax], but "
                       "zero_point.flatten()[0] = nan"),
    "zero-point-bool": (dict(zero_point=torch.tensor(False)), TypeError,
                        "zero_point must be an integer or floating tensor, got Bool"),
    "zero-point-shape": (dict(scale=torch.ones(4), zero_point=torch.zeros(1), axis=0), ValueError,
                         "zero_point shape [1] must equal scale shape [4]"),
    "qmin-equals-qmax": (dict(qmin=5, qmax=5), ValueError, "qmin (5) must be less than qmax (5)"),
    "qmin-above-qmax": (dict(qmin=7, qmax=-8), ValueError, "qmin (7) must be less than qmax (-8)"),
    "grid-17-bits": (dict(qmin=0, qmax=65536), ValueError,
                     "the grid [qmin, qmax] = [0, 65536] is wider than 16 bits (at most 65536 "
                     "levels within [-65536, 65535])"),
    "grid-below-16-bit-range": (dict(qmin=-65537, qmax=0), ValueError,
                                "the grid [qmin, qmax] = [-65537, 0] is wider than 16 bits"),
    "per-channel-length": (dict(scale=torch.ones(6), zero_point=torch.zeros(6), axis=0), ValueError,
                           "per-channel scale must be 1-D of length x.shape[0] = 4, got scale of "
                           "shape [6]"),
    "per-channel-2d-scale": (dict(scale=torch.ones(4, 1), zero_point=torch.zeros(4, 1), axis=-2),
                             ValueError, "per-channel scale must be 1-D of length x.shape[0] = 4, "
                                         "got scale of shape [4, 1]"),
    "axis-too-large": (dict(scale=torch.ones(4), zero_point=torch.zeros(4), axis=2), IndexError,
                       "axis 2 is out of range for x with 2 dimensions"),
    "axis-too-negative": (dict(scale=torch.ones(4), zero_point=torch.zeros(4), axis=-3), IndexError,
                          "axis -3 is out of range for x with 2 dimensions"),
    "axis-of-0d-x": (dict(x=torch.tensor(1.0), axis=0), IndexError,
                     "axis 0 is out of range for x with 0 dimensions"),
    "block-not-dividing": (dict(scale=torch.ones(4, 1), zero_point=torch.zeros(4, 1), axis=1,
                                block_size=4), ValueError,
                           "block_size 4 must be positive and divide x.shape[1] = 6"),
    "block-zero": (dict(scale=torch.ones(4, 1), zero_point=torch.zeros(4, 1), axis=1, block_size=0),
                   ValueError, "block_size 0 must be positive and divide x.shape[1] = 6"),
    "block-scale-shape": (dict(scale=torch.ones(4, 2), zero_point=torch.zeros(4, 2), axis=1,
                               block_size=2), ValueError,
                          "blockwise scale must have shape [4, 3] (x.shape with x.shape[axis] / "
                          "block_size), got [4, 2]"),
    "block-without-axis": (dict(block_size=2), ValueError, "block_size needs an axis"),
    "per-tensor-several-scales": (dict(scale=torch.ones(4), zero_point=torch.zeros(4)), ValueError,
                                  "per-tensor quantization (axis=None) needs a single scale, got "
                                  "scale of shape [4]; pass axis= for per-channel"),
}


def _raises(exc, op, message):
    return pytest.raises(exc, match=re.escape(f"{op}: {message}"))


@pytest.mark.parametrize("case", QDQ_CASES)
def test_quantize_dequantize_rejects(case):
    kwargs, exc, message = QDQ_CASES[case]
    with _raises(exc, "quantize_dequantize", message):
        _qdq(**kwargs)()


@pytest.mark.parametrize("case", QDQ_CASES)
def test_quantize_dequantize_backward_rejects_the_same(case):
    kwargs, exc, message = QDQ_CASES[case]
    with _raises(exc, "quantize_dequantize_backward", message):
        _qdq_backward(**kwargs)()


@pytest.mark.parametrize("case", ["x-float64", "scale-negative-at-2", "zero-point-above-qmax",
                                  "grid-17-bits", "axis-too-large", "block-without-axis"])
def test_quantize_and_its_functional_form_reject_the_same(case):
    kwargs, exc, message = QDQ_CASES[case]
    args = {"x": X, "scale": S, "zero_point": Z, "qmin": -128, "qmax": 127, "axis": None,
            "block_size": None, **kwargs}
    with _raises(exc, "quantize", message):
        ops.quantize(*args.values())
    with _raises(exc, "quantize", message):
        F.quantize(**args)


DEQ_CASES = {  # (keyword arguments of dequantize, exception type, message after "<op>: ")
    "q-int": (dict(q=X.int()), TypeError, "q must be float32, float16 or bfloat16, got Int"),
    "scale-int": (dict(scale=torch.tensor(2)), TypeError,
                  "scale must be a floating tensor, got Long"),
    "scale-negative": (dict(scale=torch.tensor(-0.5)), ValueError,
                       "scale must be finite and > 0, but scale.flatten()[0] = -0.5"),
    "zero-point-fraction": (dict(zero_point=torch.tensor(2.5)), ValueError,
                            "zero_point must hold integers, but zero_point.flatten()[0] = 2.5"),
    "per-channel-length": (dict(scale=torch.ones(3), zero_point=torch.zeros(3), axis=1),
                           ValueError, "per-channel scale must be 1-D of length x.shape[1] = 6, "
                                       "got scale of shape [3]"),
}


@pytest.mark.parametrize("case", DEQ_CASES)
def test_dequantize_rejects(case):
    kwargs, exc, message = DEQ_CASES[case]
    args = {"q": X, "scale": S, "zero_point": Z, "axis": None, "block_size": None, **kwargs}
    with _raises(exc, "dequantize", message):
        ops.dequantize(*args.values())
    with _raises(exc, "dequantize_backward", message):
        ops.dequantize_backward(torch.ones(X.shape), *args.values(), True)


def test_dequantize_has_no_grid_so_any_integer_zero_point_is_valid():
    # (q - zp) * s with q = 1, zp = 1000, s = 0.5: -499.5
    assert F.dequantize(torch.tensor([1.0]), 0.5, 1000).item() == -499.5


@pytest.mark.parametrize("op", ["quantize_dequantize_backward", "quantize_backward"])
def test_backward_rejects_grad_of_another_shape(op):
    with _raises(ValueError, op, "grad shape [3] must equal the input shape [4, 6]"):
        getattr(ops, op)(torch.ones(3), X, S, Z, -128, 127, None, None, True)


def test_dequantize_backward_rejects_grad_of_another_shape():
    message = "grad shape [6, 4] must equal the input shape [4, 6]"
    with _raises(ValueError, "dequantize_backward", message):
        ops.dequantize_backward(torch.ones(6, 4), X, S, Z, None, None, False)


def test_backward_rejects_integer_grad():
    message = "grad must be float32, float16 or bfloat16, got Long"
    with _raises(TypeError, "quantize_backward", message):
        ops.quantize_backward(torch.ones(4, 6, dtype=torch.long), X, S, Z, -128, 127, None, None,
                              False)


@pytest.mark.parametrize("bitwidth", [1, 17, 0, True, 8.0])
def test_grid_range_rejects_bitwidth(bitwidth):
    with pytest.raises(ValueError, match=re.escape(f"bitwidth must be an integer from 2 to 16, "
                                                   f"got {bitwidth!r}")):
        F.grid_range(bitwidth)


def test_grid_range_rejects_strict_unsigned():
    message = "strict=True needs a signed grid (signed=True)"
    with pytest.raises(ValueError, match=re.escape(message)):
        F.grid_range(8, signed=False, strict=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int8], ids=str)
def test_float_quantize_dequantize_rejects_target_dtype(dtype):
    name = {torch.float32: "Float", torch.float64: "Double", torch.int8: "Char"}[dtype]
    message = f"dtype must be torch.float16 or torch.bfloat16, got {name}"
    with _raises(ValueError, "float_quantize_dequantize", message):
        ops.float_quantize_dequantize(X, dtype)
    # the functional API also takes the float8 / float4 dtypes (tests/python/test_float_formats.py)
    with pytest.raises(ValueError, match=re.escape("float_quantize_dequantize: dtype must be one "
                                                   "of torch.float8_e4m3fn") + ".*" +
                       re.escape(f"; got {dtype}")):
        F.float_quantize_dequantize(X, dtype)


def test_float_quantize_dequantize_rejects_integer_x():
    message = "x must be float32, float16 or bfloat16, got Int"
    with _raises(TypeError, "float_quantize_dequantize", message):
        ops.float_quantize_dequantize(X.int(), torch.float16)


def test_errors_are_raised_with_autograd_in_the_loop():
    # The autograd wrapper must not hide the op's checks.
    scale = torch.tensor(-1.0, requires_grad=True)
    zero_point = torch.tensor(0.0, requires_grad=True)
    message = "scale must be finite and > 0, but scale.flatten()[0] = -1"
    with _raises(ValueError, "quantize_dequantize", message):
        F.quantize_dequantize(X.clone().requires_grad_(), scale, zero_point, -128, 127)


def test_noncontiguous_inputs_are_accepted():
    # Not an error: every op copies a strided input once.
    xt = X.t()
    assert not xt.is_contiguous()
    assert_same(F.quantize_dequantize(xt, S, Z, -128, 127),
                F.quantize_dequantize(xt.contiguous(), S, Z, -128, 127), "strided x")
