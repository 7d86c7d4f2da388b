"""examples/llm.py in its reduced mode (QUICK): the recipe's rows, perplexities against FP32, the
2.1.0 export holding the LPBQ weights and the 8-bit KV encodings, and the generated samples."""

import json
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples"))


def test_llm_recipe_quick(tmp_path):
    pytest.importorskip("tokenizers", reason="examples/llm.py needs tokenizers (requirements.txt)")
    import llm
    result = llm.run_workflow(llm.QUICK, str(tmp_path))
    ppl = {row.precision: row.perplexity for row in result.rows}
    assert list(ppl) == ["FP32", "FP16", "W16A16", "W8A16", "W4A16 LPBQ+SeqMSE, KV8",
                         "W4A16 + QAT"]
    assert all(math.isfinite(p) and p > 1 for p in ppl.values()), ppl
    assert ppl["FP32"] < 0.5 * 384, ppl  # the model learned something (vocab 384)
    for name, bound in (("FP16", 1e-3), ("W16A16", 1e-3), ("W8A16", 0.02),
                        ("W4A16 LPBQ+SeqMSE, KV8", 0.3)):
        assert abs(ppl[name] / ppl["FP32"] - 1) <= bound, (name, ppl)
    with open(result.exported["encodings"]) as f:
        encodings = json.load(f)
    assert encodings["version"] == "2.1.0"
    entries = encodings["encodings"]
    layers = llm.QUICK.layers
    lpbq = [e["name"] for e in entries if "per_block_int_scale" in e]
    assert len(lpbq) == 7 * layers and all(e.endswith("proj.weight") for e in lpbq), lpbq
    kv = [e["name"] for e in entries
          if e["output_dtype"] in ("int8", "uint8") and not e["name"].endswith("weight")]
    assert len(kv) == 2 * layers, kv  # keys after RoPE and values, per layer
    assert os.path.exists(result.exported["qdq_onnx"])
    # generate() with the KV cache on the final sim and on the FP model: text of the asked length
    assert set(result.samples) == {"prompt", "FP32", "W4A16 + QAT"}
    assert len(result.samples["prompt"][0]) == llm.QUICK.length // 2
    for name in ("FP32", "W4A16 + QAT"):
        ids, text = result.samples[name]
        assert len(ids) == llm.QUICK.generate and isinstance(text, str), result.samples
