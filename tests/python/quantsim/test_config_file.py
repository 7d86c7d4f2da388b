"""torchqsim.quantsim.config_file (public as `torchqsim.quantsim_config`): AIMET config files
through the C reader.

Oracle for valid files: Python's json module (which also takes the last of duplicated keys) plus
the documented resolution (AIMET's "True"/"False" strings as bools, `defaults` made complete).
Oracle for error locations: the offset of the offending text in the document, turned into
line:column here.
"""

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config_cases import doc, raises_config_error
from torchqsim.quantsim import config_file as qc
from aimet_configs import AIMET_FILES, aimet_config, aimet_configs_dir
from torchqsim.quantsim.config_types import (Defaults, EncodingConstraints, Kernel, OpTypeSettings,
                                             ParamSettings, Precision, QuantsimConfig, Supergroup)

REPO = Path(__file__).resolve().parents[3]
PRESETS = ["default", "per_channel", "target"]


# --- oracle -----------------------------------------------------------------------------------

def _bools(x):
    """AIMET's convert_configs_values_to_bool: "True"/"False" strings become bools, recursively."""
    if isinstance(x, dict):
        return {k: _bools(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_bools(v) for v in x]
    return {"True": True, "False": False}.get(x, x) if isinstance(x, str) else x


def _precision(p):
    return Precision(p["bitwidth"], p["dtype"])


def _kernels(kernels):
    return tuple(Kernel(_precision(k["activation"]), _precision(k["param"]) if "param" in k else None)
                 for k in kernels)


def _param(p):
    return ParamSettings(p.get("is_quantized"), p.get("is_symmetric"))


def _op_entry(e):
    c = e.get("encoding_constraints")
    return OpTypeSettings(
        e.get("is_input_quantized"), e.get("is_output_quantized"), e.get("is_symmetric"),
        e.get("per_channel_quantization"), {n: _param(p) for n, p in e.get("params", {}).items()},
        _kernels(e.get("supported_kernels", [])),
        None if c is None else EncodingConstraints(float(c["min"]),
                                                   float(c["max"]) if "max" in c else None))


def resolve(doc):
    """The QuantsimConfig load_config documents, computed from json.load's result."""
    d = _bools(doc)
    defaults = d["defaults"]
    return QuantsimConfig(
        defaults=Defaults(
            **{f"ops_{k}": defaults["ops"].get(k, False)
               for k in ("is_input_quantized", "is_output_quantized", "is_symmetric")},
            params=ParamSettings(**{k: defaults["params"].get(k, False)
                                    for k in ("is_quantized", "is_symmetric")}),
            **{k: defaults.get(k, False)
               for k in ("strict_symmetric", "unsigned_symmetric", "per_channel_quantization")},
            supported_kernels=_kernels(defaults.get("supported_kernels", [])),
            hw_version=defaults.get("hw_version", "default")),
        params={n: _param(p) for n, p in d["params"].items()},
        op_type={name: _op_entry(e) for name, e in d["op_type"].items()},
        supergroups=[Supergroup(g["op_list"]) for g in d["supergroups"]],
        model_input_is_input_quantized=d["model_input"].get("is_input_quantized"),
        model_output_is_output_quantized=d["model_output"].get("is_output_quantized"),
        supergroup_pass_list=d.get("supergroup_pass_list", []))


# --- files that must load ---------------------------------------------------------------------

def test_aimet_ships_the_files_we_test():
    aimet_config("default_config.json")
    assert sorted(p.name for p in aimet_configs_dir().glob("*.json")) == AIMET_FILES


@pytest.mark.parametrize("name", AIMET_FILES)
def test_aimet_files_load_as_json_and_aimet_read_them(name):
    path = aimet_config(name)
    cfg = qc.load_config(path)
    expected = resolve(json.loads(path.read_text()))
    assert cfg == expected
    assert list(cfg.op_type) == list(expected.op_type)  # file order, duplicates at first place


def test_htp_v75_specifics():
    cfg = qc.load_config(str(aimet_config("htp_quantsim_config_v75.json")))
    assert cfg.defaults.hw_version == "V75"
    assert cfg.defaults.per_channel_quantization is False
    assert cfg.op_type["Conv"].per_channel_quantization is True
    assert cfg.op_type["GroupNormalization"].params == {"bias": ParamSettings(is_quantized=True)}
    assert cfg.op_type["Softmax"].encoding_constraints == EncodingConstraints(0.0, 1.0)
    assert cfg.op_type["Tanh"].encoding_constraints == EncodingConstraints(-1.0, 1.0)
    assert cfg.op_type["Relu"].encoding_constraints == EncodingConstraints(0.0, None)
    assert Supergroup(("Conv", "BatchNormalization", "Relu")) in cfg.supergroups
    assert cfg.supergroup_pass_list == ("LayerNormalization", "RMSNormalization", "MatmulAdd")
    d = cfg.defaults
    assert all(type(v) is bool for v in (d.ops_is_input_quantized, d.ops_is_output_quantized,
                                         d.ops_is_symmetric))


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_by_name_and_by_path(name):
    path = REPO / "configs" / f"{name}.json"
    by_name = qc.load_config(name)
    assert by_name == resolve(json.loads(path.read_text()))
    assert qc.load_config(f"{name}.json") == by_name
    assert qc.load_config(path) == by_name
    assert qc.preset_path(name) == path


def test_default_preset_is_load_config_none():
    assert qc.load_config() == qc.load_config("per_channel")  # aimet-torch 2.42's default
    assert qc.preset_names() == PRESETS


def test_target_preset():
    cfg = qc.load_config("target")
    assert cfg.defaults.per_channel_quantization is True
    for op in ("Softmax", "Sigmoid"):
        assert cfg.op_type[op].encoding_constraints == EncodingConstraints(0.0, 1.0), op
    for op in ("Reshape", "Transpose", "Split", "Slice", "MaxPool", "Gather", "Squeeze", "Unsqueeze",
               "Flatten", "Pad", "Expand", "Tile"):
        assert cfg.op_type[op].is_output_quantized is False, op
    assert "Concat" not in cfg.op_type
    assert cfg.params["bias"] == ParamSettings(is_quantized=False)


def test_unknown_name_lists_the_presets():
    with pytest.raises(FileNotFoundError, match="no quantsim config file or preset named 'nope'; "
                                                 "presets: default, per_channel, target"):
        qc.load_config("nope")


# --- accepted forms, against the json oracle ----------------------------------------------------

def test_bool_strings_and_duplicate_keys():
    text = doc(op_type='{"Conv": {"bogus": 1}, "Relu": {"is_symmetric": "True"}, '
                       '"Conv": {"is_output_quantized": true, "is_output_quantized": "False"}}',
               model_input='{"is_input_quantized": "True"}')
    cfg = qc.parse_config(text)
    assert cfg.op_type == {"Conv": OpTypeSettings(is_output_quantized=False),
                           "Relu": OpTypeSettings(is_symmetric=True)}
    assert list(cfg.op_type) == ["Conv", "Relu"]  # as json.loads orders them
    assert cfg == resolve(json.loads(text))
    assert cfg.model_input_is_input_quantized is True
    assert cfg.model_output_is_output_quantized is None  # unset, not False


def test_supergroup_pass_list_and_min_only_constraints():
    """AIMET 2.42's HTP files: supergroup_pass_list (read, ignored when applying) and
    encoding_constraints with only a min (the max is calibrated)."""
    text = doc(op_type='{"Relu": {"encoding_constraints": {"min": 0.0}}}') \
        .replace('"model_output": {}', '"model_output": {},\n"supergroup_pass_list": ["MatmulAdd"]')
    cfg = qc.parse_config(text)
    assert cfg.op_type["Relu"].encoding_constraints == EncodingConstraints(0.0, None)
    assert cfg.supergroup_pass_list == ("MatmulAdd",)
    assert cfg == resolve(json.loads(text))
    assert qc.parse_config(doc()).supergroup_pass_list == ()
    raises_config_error(doc(op_type='{"Relu": {"encoding_constraints": {"max": 1.0}}}'),
                        "missing required key 'min' at $.op_type.Relu.encoding_constraints "
                        "(line {line}, column {column})",
                        "$.op_type.Relu.encoding_constraints", '{"max"')
    raises_config_error(doc().replace('"model_output": {}', '"model_output": {},\n'
                                      '"supergroup_pass_list": [1]'),
                        "wrong type at $.supergroup_pass_list[0] (line {line}, column {column}): "
                        "expected a pass name (a string), got the number 1",
                        "$.supergroup_pass_list[0]", "1]")


_NAMES = st.sampled_from(["Conv", "Gemm", "Relu", "Softmax", "Add", "MatMul", "Cast"])
_PARAMS = st.sampled_from(["weight", "bias", "running_mean"])
_FLAG = st.booleans()


def _flags(keys):
    return st.fixed_dictionaries({}, optional={k: _FLAG for k in keys})


_PRECISION = st.one_of(
    st.fixed_dictionaries({"bitwidth": st.sampled_from([4, 8, 16]), "dtype": st.just("int")}),
    st.fixed_dictionaries({"bitwidth": st.sampled_from([16, 32]), "dtype": st.just("float")}))
_OP = st.fixed_dictionaries({}, optional={
    **{k: _FLAG for k in ("is_input_quantized", "is_output_quantized", "is_symmetric",
                          "per_channel_quantization")},
    "params": st.dictionaries(_PARAMS, _flags(["is_quantized", "is_symmetric"]), min_size=1),
    "supported_kernels": st.lists(st.fixed_dictionaries({"activation": _PRECISION},
                                                        optional={"param": _PRECISION}), min_size=1),
    "encoding_constraints": st.tuples(st.integers(-8, 7), st.integers(1, 8)).map(
        lambda t: {"min": t[0] / 4, "max": t[0] / 4 + t[1] / 4}),
})
_DEFAULTS = st.fixed_dictionaries(
    {"ops": _flags(["is_input_quantized", "is_output_quantized", "is_symmetric"]),
     "params": _flags(["is_quantized", "is_symmetric"])},
    optional={"strict_symmetric": _FLAG, "unsigned_symmetric": _FLAG,
              "per_channel_quantization": _FLAG, "hw_version": st.sampled_from(["V73", "V75"]),
              "supported_kernels": st.lists(st.fixed_dictionaries(
                  {"activation": _PRECISION, "param": _PRECISION}), min_size=1, max_size=3)})


def _dump(x, rng):
    """JSON text of x with each bool written as true/false or "True"/"False" at random, and each
    object of op types / params given a repeated key at random (json.loads keeps the last)."""
    if isinstance(x, bool):
        return json.dumps(x) if rng.random() < 0.5 else f'"{x}"'
    if isinstance(x, dict):
        items = [f"{json.dumps(k)}: {_dump(v, rng)}" for k, v in x.items()]
        if x and all(isinstance(v, dict) for v in x.values()) and rng.random() < 0.3:
            k = rng.choice(list(x))  # an earlier member with the same key, overridden later
            items.insert(0, f'{json.dumps(k)}: {{"is_symmetric": "maybe"}}')
        return "{" + ", ".join(items) + "}"
    if isinstance(x, list):
        return "[" + ", ".join(_dump(v, rng) for v in x) + "]"
    return json.dumps(x)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(defaults=_DEFAULTS,
       params=st.dictionaries(_PARAMS, _flags(["is_quantized", "is_symmetric"])),
       op_type=st.dictionaries(_NAMES, _OP),
       supergroups=st.lists(st.lists(_NAMES, min_size=2, max_size=4), max_size=3),
       model_input=_flags(["is_input_quantized"]), model_output=_flags(["is_output_quantized"]),
       seed=st.integers(0, 2**31))
def test_random_valid_configs_match_the_json_oracle(defaults, params, op_type, supergroups,
                                                    model_input, model_output, seed):
    config = {"defaults": defaults, "params": params, "op_type": op_type,
              "supergroups": [{"op_list": g} for g in supergroups],
              "model_input": model_input, "model_output": model_output}
    text = _dump(config, random.Random(seed))
    assert qc.parse_config(text) == resolve(json.loads(text)), text


# --- narrow float formats as kernel precisions (docs/formats.md §3) -----------------------------

def test_format_names_are_kernel_precisions_with_their_bits():
    from torchqsim.float_formats import BLOCK_FORMATS, FLOAT_FORMATS, format_bits
    names = list(FLOAT_FORMATS) + list(BLOCK_FORMATS)
    kernels = ", ".join(f'{{"activation": {{"dtype": "{n}"}}, "param": {{"dtype": "{n}", '
                        f'"bitwidth": {format_bits(n)}}}}}' for n in names)
    cfg = qc.parse_config(doc(defaults=f'{{"ops": {{}}, "params": {{}}, "supported_kernels": '
                                       f'[{kernels}]}}'))
    got = [(k.activation, k.param) for k in cfg.defaults.supported_kernels]
    assert got == [(Precision(format_bits(n), n), Precision(format_bits(n), n)) for n in names]


def test_unknown_format_name_is_refused_naming_the_json_path():
    text = doc(op_type='{"Conv": {"supported_kernels": [{"activation": {"dtype": "mxfp5"}}]}}')
    e = raises_config_error(
        text, "unsupported dtype 'mxfp5' at $.op_type.Conv.supported_kernels[0].activation.dtype "
              "(line {line}, column {column}): expected \"int\", \"float\" or a format name "
              "(fp8_e4m3, fp8_e5m2, fp8_e4m3fnuz, fp8_e5m2fnuz, fp6_e3m2, fp6_e2m3, fp4_e2m1, "
              "mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8, nvfp4)",
        "$.op_type.Conv.supported_kernels[0].activation.dtype", '"mxfp5"')
    from torchqsim.float_formats import BLOCK_FORMATS, FLOAT_FORMATS
    assert all(n in str(e) for n in list(FLOAT_FORMATS) + list(BLOCK_FORMATS))


def test_format_bitwidth_must_match_the_format():
    text = doc(defaults='{"ops": {}, "params": {}, "supported_kernels": [{"activation": '
                        '{"dtype": "int", "bitwidth": 8}, "param": {"bitwidth": 8, "dtype": "mxfp4"}}]}')
    raises_config_error(text, "bitwidth 8 does not match format mxfp4 (4 bits) at "
                              "$.defaults.supported_kernels[0].param.bitwidth (line {line}, column "
                              "{column}): the format's element bits (or leave it out)",
                        "$.defaults.supported_kernels[0].param.bitwidth", '8, "dtype": "mxfp4"')


def test_sim_warns_for_formats_outside_the_supported_kernels(tmp_path):
    import warnings

    import torch
    from torch import nn

    from torchqsim.quantsim import QuantizationSimModel
    cfg = tmp_path / "c.json"
    cfg.write_text(doc(defaults='{"ops": {"is_output_quantized": "True"}, "params": '
                                '{"is_quantized": "True"}, "supported_kernels": [{"activation": '
                                '{"dtype": "fp8_e4m3"}, "param": {"dtype": "mxfp4"}}]}'))
    model = nn.Sequential(nn.Linear(32, 8))
    x = torch.randn(2, 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = QuantizationSimModel(model, x, config_file=str(cfg))
    assert any(str(w.message) == "module '0': activation int8, param int8 is not among its "
               "supported_kernels: act fp8_e4m3 param mxfp4" for w in caught), \
        [str(w.message) for w in caught]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim.set_precision(nn.Linear, activation="fp8_e4m3", param="mxfp4")
    assert not any("supported_kernels" in str(w.message) for w in caught)
