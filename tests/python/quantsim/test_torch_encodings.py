"""``sim.load_encodings`` (wrappers/quantsim/torch_encodings.py) is all-or-nothing and refuses
unusable encodings up front, naming the file and the entry (issue 14 items 2, 3, 11)."""

import copy
import json
import re

import pytest
import torch
from torch import nn

from torchqsim.quantsim import QuantizationSimModel


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def _sim():
    torch.manual_seed(0)
    model, x = _Net().eval(), torch.randn(2, 3, 6, 6)
    sim = QuantizationSimModel(model, x, quant_scheme="tf", config_file="per_channel")
    sim.compute_encodings(lambda m: m(x))
    return sim, x


def _state(sim, x):
    """What a load must not change when it fails: outputs, quantizer modules, slot specs."""
    with torch.no_grad():
        y = sim.model(x)
    specs = repr({n: [(kind, key, vars(s)) for kind, key, s in spec.slots()]
                  for n, spec in sim._specs.items()})
    return y, sim.quantizer_encodings_dict(), [(n, id(q)) for n, q in sim.quantizers()], specs


def _assert_unchanged(sim, x, before):
    after = _state(sim, x)
    assert torch.equal(after[0], before[0])
    assert after[1:] == before[1:]


def _doubled(enc):
    """`enc` with every scale, min and max doubled (a valid, different set of encodings)."""
    out = copy.deepcopy(enc)
    for section in ("activation_encodings", "param_encodings"):
        for entry in _leaves(out[section]):
            for key in ("scale", "min", "max"):
                entry[key] *= 2
    return out


def _leaves(tree):
    if isinstance(tree, list):
        return [e for item in tree for e in _leaves(item)]
    if "bitwidth" in tree:
        return [tree]
    return [e for v in tree.values() for e in _leaves(v)]


def test_a_bad_entry_after_good_ones_changes_nothing():
    sim, x = _sim()
    good = _doubled(sim.quantizer_encodings_dict())
    bad = copy.deepcopy(good)
    bad["param_encodings"]["fc.weight"][0]["scale"] = 0.0  # the last section, after the others
    before = _state(sim, x)
    with pytest.raises(ValueError, match=r"param_encodings\['fc.weight'\]: scale\[0\] must be > 0"):
        sim.load_encodings(bad, strict=True)
    _assert_unchanged(sim, x, before)
    sim.load_encodings(good)  # the same set without the bad entry loads
    with torch.no_grad():
        assert not torch.equal(sim.model(x), before[0])


def test_a_per_channel_count_mismatch_leaves_specs_and_quantizers_alone():
    sim, x = _sim()
    enc = sim.quantizer_encodings_dict()
    channels = enc["param_encodings"]["conv.weight"]
    wrong = [dict(c, bitwidth=4, offset=-8, min=c["scale"] * -8, max=c["scale"] * 7)
             for c in channels[:3]]  # 3 channels for 4 output channels, at 4 bits
    before = _state(sim, x)
    with pytest.raises(ValueError, match="3 per-channel entries do not match parameter shape"):
        sim.load_encodings({"param_encodings": {"conv.weight": wrong}})
    _assert_unchanged(sim, x, before)
    assert sim._specs["conv"].params["weight"].bitwidth == 8


def _channel(**kw):
    c = {"bitwidth": 8, "dtype": "int", "is_symmetric": "False", "min": -1.0, "max": 1.0,
         "offset": -128, "scale": 2.0 / 255}
    return c | kw


@pytest.mark.parametrize("channels, match", [
    ([_channel(min=1.0, max=1.0)], r"max\[0\] must be greater than min"),
    ([_channel(min=2.0, max=1.0)], r"max\[0\] must be greater than min"),
    ([_channel(scale=1e300)], r"scale\[0\]: does not fit in float32"),
    ([_channel(scale=1e-300)], r"scale\[0\] must be > 0"),
    ([_channel(offset=-3.5)], r"\[0\].offset: expected an integer, got -3.5"),
    ([_channel(offset=-300)], r"offset\[0\] must be an integer in \[-255, 0\]"),
    ([_channel(), _channel(), _channel(), _channel(bitwidth=4, offset=-8)],
     r"\[3\]: dtype, bitwidth and is_symmetric .* differ from the first channel"),
    ([_channel(), _channel(is_symmetric="True"), _channel(), _channel()],
     r"\[1\]: dtype, bitwidth and is_symmetric .* differ from the first channel"),
    ([_channel(is_symmetric="yes")], r"\[0\].is_symmetric: expected true/false"),
    ([_channel(typo=1)], r"\[0\]: unknown key 'typo'"),
])
def test_unusable_encodings_are_refused_naming_the_entry(channels, match):
    sim, x = _sim()
    before = _state(sim, x)
    with pytest.raises(ValueError, match=r"param_encodings\['conv.weight'\].*" + match):
        sim.load_encodings({"param_encodings": {"conv.weight": channels}})
    _assert_unchanged(sim, x, before)


def test_errors_from_a_file_name_the_file(tmp_path):
    sim, x = _sim()
    enc = sim.quantizer_encodings_dict()
    enc["param_encodings"]["fc.weight"][0]["scale"] = -1.0
    path = tmp_path / "bad_torch.encodings"
    path.write_text(json.dumps(enc))
    with pytest.raises(ValueError, match=f"load_encodings: {path}: param_encodings"):
        sim.load_encodings(path)
    deep = tmp_path / "deep.encodings"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match=f"{deep}: not a JSON encodings file: nested too deeply"):
        sim.load_encodings(deep)
    broken = tmp_path / "broken.encodings"
    broken.write_text('{"param_encodings": ')
    with pytest.raises(ValueError, match=f"{broken}: not a JSON encodings file"):
        sim.load_encodings(broken)


@pytest.mark.parametrize("slot, why", [("0", "the input quantizer 0 of 'fc' is disabled"),
                                       ("5", "module 'fc' has no input slot 5")])
def test_entry_for_a_slot_the_sim_leaves_off_names_module_and_slot(slot, why):
    # AIMET quantizes some inputs this sim leaves off (issue 13): its entry for one is refused
    # (strict) or skipped with a warning, naming the module and the slot
    sim, x = _sim()
    entry = sim.quantizer_encodings_dict()["activation_encodings"]["fc"]["output"]["0"]
    data = {"activation_encodings": {"fc": {"input": {slot: entry}}}, "param_encodings": {}}
    with torch.no_grad():
        before = sim.model(x)
    where = f"activation_encodings['fc']['input']['{slot}']: {why}"
    with pytest.raises(RuntimeError, match=f"^load_encodings: {re.escape(where)}"):
        sim.load_encodings(data)
    with pytest.warns(UserWarning, match=re.escape(f"skipped {where}")):
        sim.load_encodings(data, strict=False)
    assert sim.model.fc.input_quantizers[0] is None
    with torch.no_grad():
        assert torch.equal(sim.model(x), before)
