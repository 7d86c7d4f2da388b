"""torchqsim.quantsim.config_file: errors in AIMET config files give ConfigError with the message,
the JSON path (.path) and line:column (.line, .column); unreadable files give OSError.

Oracle for error locations: the offset of the offending text in the document, turned into
line:column here (tests/python/quantsim/config_cases.py).
"""

import pytest

from config_cases import doc, location, raises_config_error
from torchqsim.quantsim import config_file as qc


def test_config_error_is_a_value_error_with_location_attributes():
    assert issubclass(qc.ConfigError, ValueError)
    assert (qc.ConfigError.path, qc.ConfigError.line, qc.ConfigError.column) == (None, None, None)


BAD_CONFIGS = [
    pytest.param(doc(defaults='{"ops": {"is_output_quantised": true}, "params": {}}'),
                 "unknown key 'is_output_quantised' at $.defaults.ops (line {line}, column "
                 "{column}); did you mean 'is_output_quantized'?",
                 "$.defaults.ops", '"is_output_quantised"', id="unknown-key-nearest"),
    pytest.param(doc(model_output='{"bogus": false}'),
                 "unknown key 'bogus' at $.model_output (line {line}, column {column}); "
                 "expected one of: is_output_quantized",
                 "$.model_output", '"bogus"', id="unknown-key-choices"),
    pytest.param(doc(op_type='{"Conv": {"is_output_quantized": "yes"}}'),
                 "wrong type at $.op_type.Conv.is_output_quantized (line {line}, column "
                 "{column}): expected a boolean (true, false, \"True\" or \"False\"), got "
                 "the string \"yes\"",
                 "$.op_type.Conv.is_output_quantized", '"yes"', id="wrong-type-bool"),
    pytest.param(doc(params='[]'),
                 "wrong type at $.params (line {line}, column {column}): expected an "
                 "object, got an array", "$.params", "[]", id="wrong-type-object"),
    pytest.param(doc(defaults='{"ops": {}, "params": {}, "supported_kernels": [{"activation": '
                              '{"bitwidth": 8, "dtype": "int"}, "param": {"bitwidth": 2, '
                              '"dtype": "int"}}]}'),
                 "unsupported bitwidth 2 for dtype int at "
                 "$.defaults.supported_kernels[0].param.bitwidth (line {line}, column "
                 "{column}): int kernels are 4, 8 or 16 bits (torchqsim's integer grid "
                 "ends at 16)",
                 "$.defaults.supported_kernels[0].param.bitwidth", '2, "dtype": "int"}}]',
                 id="unsupported-bitwidth"),
    pytest.param(doc(supergroups='[{"op_list": ["Conv", "Relu"]}, {"op_list": ["Gemm"]}]'),
                 "op_list with a single op at $.supergroups[1].op_list (line {line}, "
                 "column {column}): a supergroup needs at least 2 ops",
                 "$.supergroups[1].op_list", '["Gemm"]', id="single-op-list"),
    pytest.param(doc(supergroups='[{"op_list": []}]'),
                 "empty op_list at $.supergroups[0].op_list (line {line}, column "
                 "{column}): a supergroup needs at least 2 ops",
                 "$.supergroups[0].op_list", "[]", id="empty-op-list"),
    pytest.param('{"defaults": {"ops": {}, "params": {}}, "params": {}, "op_type": {}, '
                 '"supergroups": [],\n "model_output": {}}',
                 "missing required key 'model_input' at $ (line {line}, column {column})",
                 "$", "{", id="missing-section"),
    pytest.param(doc(op_type='{"Sigmoid": {"encoding_constraints": {"min": 1, "max": 1}}}'),
                 "empty encoding range [1, 1] at $.op_type.Sigmoid.encoding_constraints "
                 "(line {line}, column {column}): min must be less than max",
                 "$.op_type.Sigmoid.encoding_constraints", '{"min"', id="empty-encoding-range"),
]


@pytest.mark.parametrize("text,message,path,needle", BAD_CONFIGS)
def test_bad_config_names_the_json_path_and_location(text, message, path, needle):
    raises_config_error(text, message, path, needle)


def test_syntax_error_has_location_but_no_path():
    text = doc(params='{"bias": {"is_quantized": false},}')
    # the '}' right after the trailing comma: ops, params, defaults and bias close before it
    raises_config_error(text, "invalid JSON at line {line}, column {column}: expected a key in "
                              "double quotes, found '}}'",  # '}}': format escape
                        None, "}", occurrence=4)


def test_load_prefixes_the_file(tmp_path):
    path = tmp_path / "bad.json"
    text = doc(model_input='{"is_input_quantized": 1}')
    path.write_text(text)
    line, column = location(text, "1}")
    with pytest.raises(qc.ConfigError) as info:
        qc.load_config(path)
    assert str(info.value) == (f"{path}: wrong type at $.model_input.is_input_quantized (line {line}, "
                               f"column {column}): expected a boolean (true, false, \"True\" or "
                               f"\"False\"), got the number 1")
    assert (info.value.path, info.value.line, info.value.column) == (
        "$.model_input.is_input_quantized", line, column)


def test_unreadable_file_is_an_os_error(tmp_path):
    from torchqsim import _io
    with pytest.raises(OSError, match=f"cannot read '{tmp_path}': Is a directory"):
        _io.load_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="no quantsim config file or preset named"):
        qc.load_config(tmp_path)  # a directory is neither a config file nor a preset
