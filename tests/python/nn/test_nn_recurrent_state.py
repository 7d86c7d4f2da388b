"""The initial-state slots of the recurrent wrappers (torchqsim/nn/recurrent.py): ``h0`` (and an
LSTM's ``c0``) in input slots 1 (and 2), as aimet-torch 2.42 has them.

Oracle: the torch module itself (``torch.func.functional_call``) on inputs, states and weights
fake-quantized by the pure-torch formula of tests/python/reference.py (``ref_qdq``), its outputs
fake-quantized the same way; bit for bit.
"""

import pytest
import torch
from torch import nn

from torchqsim.nn import QuantizedGRU, QuantizedLSTM, QuantizedRNN
from wrapper_reference import narrow_quantizer, ref_qdq

_CASES = [(nn.LSTM, QuantizedLSTM), (nn.GRU, QuantizedGRU), (nn.RNN, QuantizedRNN)]


def _states(cell, batch=3):
    g = torch.Generator().manual_seed(2)
    h0 = torch.randn(4, batch, 6, generator=g)  # 2 layers x 2 directions
    return (h0, torch.randn(4, batch, 6, generator=g)) if cell is nn.LSTM else h0


def _wrapper(cell, qcls, x, hx):
    torch.manual_seed(0)
    module = cell(5, 6, num_layers=2, bidirectional=True, batch_first=True).eval()
    wrapper = qcls.from_module(module)
    states = hx if isinstance(hx, tuple) else (hx,)
    for i, t in enumerate((x, *states)):
        wrapper.input_quantizers[i] = narrow_quantizer(t, bitwidth=4)
    for name, p in module.named_parameters():
        wrapper.param_quantizers[name] = narrow_quantizer(p)
    out, state = module(x, hx)
    for i, t in enumerate((out, *(state if isinstance(state, tuple) else (state,)))):
        wrapper.output_quantizers[i] = narrow_quantizer(t)
    return module, wrapper


def _reference(module, wrapper, x, hx):
    q = wrapper.input_quantizers
    params = {n: ref_qdq(wrapper.param_quantizers[n], p) for n, p in module.named_parameters()}
    if isinstance(hx, tuple):
        hx = tuple(ref_qdq(q[1 + i], h) for i, h in enumerate(hx))
    else:
        hx = ref_qdq(q[1], hx)
    out, state = torch.func.functional_call(module, params, (ref_qdq(q[0], x), hx))
    outs = wrapper.output_quantizers
    if isinstance(state, tuple):
        return ref_qdq(outs[0], out), tuple(ref_qdq(outs[1 + i], s) for i, s in enumerate(state))
    return ref_qdq(outs[0], out), ref_qdq(outs[1], state)


def _flat(result):
    out, state = result
    return [out, *(state if isinstance(state, tuple) else (state,))]


@pytest.mark.parametrize("cell, qcls", _CASES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("keyword", [False, True], ids=["positional", "hx="])
def test_initial_state_goes_through_its_slots(cell, qcls, keyword):
    x = torch.randn(3, 7, 5, generator=torch.Generator().manual_seed(1))
    hx = _states(cell)
    module, wrapper = _wrapper(cell, qcls, x, hx)
    with torch.no_grad():
        got = wrapper(x, hx=hx) if keyword else wrapper(x, hx)
        expected = _reference(module, wrapper, x, hx)
        for a, b in zip(_flat(got), _flat(expected), strict=True):
            assert torch.equal(a, b)
        for i in range(1, len(wrapper.input_quantizers)):  # each state slot changes the result
            saved, wrapper.input_quantizers[i] = wrapper.input_quantizers[i], None
            unquantized = wrapper(x, hx)
            wrapper.input_quantizers[i] = saved
            assert not torch.equal(_flat(unquantized)[1], _flat(got)[1]), f"slot {i}"


@pytest.mark.parametrize("cell, qcls", _CASES, ids=lambda c: c.__name__)
def test_without_initial_state_the_state_slots_are_unused(cell, qcls):
    """torch's zero state is not quantized: the result is the call without state slots."""
    x = torch.randn(3, 7, 5, generator=torch.Generator().manual_seed(1))
    module, wrapper = _wrapper(cell, qcls, x, _states(cell))
    with torch.no_grad():
        got = wrapper(x)
        for i in range(1, len(wrapper.input_quantizers)):
            wrapper.input_quantizers[i] = None
        for a, b in zip(_flat(got), _flat(wrapper(x)), strict=True):
            assert torch.equal(a, b)


def test_slot_counts_are_aimets():
    assert [len(QuantizedLSTM(2, 3).input_quantizers), len(QuantizedGRU(2, 3).input_quantizers),
            len(QuantizedRNN(2, 3).input_quantizers)] == [3, 2, 2]
