"""Helpers of the quantsim config tests (tests/python/quantsim/test_config_file*.py): a valid
config with sections replaced, and the check that parsing raises ConfigError at a location."""

import pytest

from torchqsim.quantsim import config_file as qc


def location(text, needle, occurrence=0):
    """(line, column) of the `occurrence`-th `needle` in `text`, both from 1."""
    i = -1
    for _ in range(occurrence + 1):
        i = text.index(needle, i + 1)
    return text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i)


def doc(**sections):
    """A valid config (one section per line) with the given sections' JSON text replaced."""
    base = {"defaults": '{"ops": {}, "params": {}}', "params": "{}", "op_type": "{}",
            "supergroups": "[]", "model_input": "{}", "model_output": "{}"}
    base.update(sections)
    return "{\n" + ",\n".join(f'"{k}": {v}' for k, v in base.items()) + "\n}\n"


def raises_config_error(text, message, path, needle, occurrence=0):
    """parse_config(text) raises ConfigError(message) at `path`, located at `needle`."""
    line, column = location(text, needle, occurrence)
    with pytest.raises(qc.ConfigError) as info:
        qc.parse_config(text)
    e = info.value
    assert str(e) == message.format(line=line, column=column)
    assert (e.path, e.line, e.column) == (path, line, column), str(e)
    return e
