"""Helpers of the quantsim config tests: a config file written from sections."""

import json

ACT_ON = {"ops": {"is_output_quantized": True},
          "params": {"is_quantized": True, "is_symmetric": True}}


def config(tmp_path, defaults=None, **sections):
    """Writes a config with empty sections except those given; returns its path."""
    cfg = {"defaults": {"ops": {}, "params": {}}, "params": {}, "op_type": {},
           "supergroups": [], "model_input": {}, "model_output": {}}
    cfg["defaults"].update(defaults or {})
    cfg.update(sections)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def precision(q):
    """(bitwidth, symmetric) of quantizer `q`."""
    return q.bitwidth, q.symmetric
