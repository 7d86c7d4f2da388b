"""`QuantizationMixin`: from_module sharing, registration of user modules, the unsupported-module
error, and the generic forward of a registered class.

Oracles: object identity, hand-written expected messages, and `wrapper_reference` (the torch
module on pure-torch quantize-dequantized parameters and inputs).
"""

import pytest
import torch
from torch import nn

import torchqsim.nn as qnn
from asserts import assert_same
from wrapper_reference import narrow_quantizer, quantizer, reference_call


class Scale(nn.Module):
    """A user module with its own parameter and a non-torch forward."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([0.3, -1.7, 2.2]))
        self.register_buffer("offset", torch.tensor(0.25))

    def forward(self, x, y):
        return x * self.weight + y + self.offset


def test_from_module_shares_parameters_buffers_and_leaves_the_module_unchanged():
    conv = nn.Conv2d(2, 3, 3)
    bn = nn.BatchNorm2d(3).eval()
    qconv, qbn = qnn.QuantizedConv2d.from_module(conv), qnn.QuantizedBatchNorm2d.from_module(bn)
    assert qconv.weight is conv.weight and qconv.bias is conv.bias
    assert qbn.running_mean is bn.running_mean and qbn.num_batches_tracked is bn.num_batches_tracked
    qconv.param_quantizers["weight"] = quantizer(-0.1, 0.1)
    assert not hasattr(conv, "param_quantizers") and list(conv.children()) == []
    assert dict(conv.named_parameters()).keys() == {"weight", "bias"}
    with torch.no_grad():
        qconv.weight.add_(1.0)  # training the wrapper trains the original
    assert torch.equal(conv.weight, qconv.weight)
    qbn.train()(torch.randn(4, 3, 2, 2))
    assert int(bn.num_batches_tracked) == 1 and bn.training is False  # train() is per object


def test_from_module_rejects_another_module_class():
    with pytest.raises(TypeError, match=r"QuantizedConv2d.from_module expects a "
                                        r"torch.nn.modules.conv.Conv2d, got Linear"):
        qnn.QuantizedConv2d.from_module(nn.Linear(2, 2))


def test_unknown_module_error_names_the_module_and_shows_registration_and_exclusion():
    class Odd(nn.Module):
        def forward(self, x):
            return x.cumsum(0)

    with pytest.raises(qnn.UnsupportedModuleError) as info:
        qnn.to_quantized(Odd(), "encoder.block3.odd")
    message = str(info.value)
    assert message.startswith("module 'encoder.block3.odd' (test_nn_base.") and \
        ".Odd) has no quantized class" in message
    assert "@torchqsim.register_quantized(Odd)" in message
    assert "class QuantizedOdd(torchqsim.nn.QuantizationMixin, Odd):" in message
    assert "modules_to_exclude=[model.encoder.block3.odd]" in message
    assert "module_classes_to_exclude=[Odd]" in message
    assert isinstance(info.value, RuntimeError)
    # A subclass of a supported class is not silently quantized as its parent.
    class MyLinear(nn.Linear):
        """A subclass the registry has no quantized class for."""
    with pytest.raises(qnn.UnsupportedModuleError, match="MyLinear"):
        qnn.to_quantized(MyLinear(2, 2), "fc")


def test_left_alone_and_already_quantized_modules_come_back_unchanged():
    for module in (nn.Identity(), nn.Sequential(), nn.ModuleList(), qnn.QuantizedReLU()):
        assert qnn.to_quantized(module, "m") is module


def test_registered_user_module_gets_slots_and_the_generic_quantized_forward():
    @qnn.register_quantized(Scale, onnx_types="Mul")
    class QuantizedScale(qnn.QuantizationMixin, Scale):
        num_inputs = 2

    try:
        module = Scale()
        wrapper = qnn.to_quantized(module, "scale")
        assert type(wrapper) is QuantizedScale and QuantizedScale.onnx_types == ("Mul",)
        assert wrapper.weight is module.weight and list(wrapper.param_quantizers) == ["weight"]
        assert len(wrapper.input_quantizers) == 2
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
        assert_same(wrapper(x, y), module(x, y), "all slots None")

        wrapper.param_quantizers["weight"] = narrow_quantizer(module.weight)
        wrapper.input_quantizers[1] = narrow_quantizer(y)
        wrapper.output_quantizers[0] = narrow_quantizer(module(x, y))
        got = wrapper(x, y)
        assert_same(got, reference_call(module, wrapper, (x, y)), "quantized")
        assert wrapper.weight is module.weight and isinstance(wrapper.weight, nn.Parameter)
        got.sum().backward()
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0
    finally:
        del qnn.QuantizationMixin._registry[Scale]


def test_registration_errors_are_clear():
    with pytest.raises(TypeError, match="expected an nn.Module class"):
        qnn.register_quantized(int)
    with pytest.raises(TypeError, match=r"deriving from QuantizationMixin and Scale"):
        qnn.register_quantized(Scale)(Scale)
    with pytest.raises(TypeError, match="onnx_types must be non-empty strings"):
        qnn.register_quantized(Scale, onnx_types=())
    assert qnn.quantized_class(Scale) is None


def test_quantizers_are_submodules_and_none_slots_pass_exactly():
    q = qnn.QuantizedLinear(3, 2)
    q.input_quantizers[0] = quantizer(-1.0, 1.0)
    q.param_quantizers["bias"] = quantizer(-1.0, 1.0)
    names = {n for n, _ in q.named_modules()}
    assert {"input_quantizers.0", "param_quantizers.bias"} <= names
    assert "param_quantizers.weight" not in names and "output_quantizers.0" not in names
    assert {"input_quantizers.0.min", "param_quantizers.bias.max"} <= set(q.state_dict())


def test_disabled_slots_pass_the_arguments_themselves_and_enabled_ones_quantize():
    """All slots None: the arguments come back as they are (no quantizer is called); a slot set
    later is used; values beyond the slots always pass through."""
    q = qnn.QuantizedAdd()
    x, y = torch.tensor([0.3, -0.7]), torch.tensor([1.1, 0.2])
    args = (x, y, "extra")
    passed = q.quantize_inputs(args)
    assert len(passed) == 3 and all(a is b for a, b in zip(passed, args))
    assert_same(q(x, y), x + y, "all slots None")
    q.input_quantizers[1] = quantizer(-1.0, 1.0)
    got = q.quantize_inputs(args)
    assert got[0] is x and got[2] == "extra"
    assert_same(got[1], q.input_quantizers[1](y), "slot 1 quantizes")
    assert_same(q(x, y), x + q.input_quantizers[1](y), "forward with slot 1")
