"""The AIMET offset of a strict symmetric grid in both writers of AIMET entries (issue 18 item 1).

Evidence for -127: AIMET's libpymo (docs/aimet.md §2.2, ``getComputedEncodings``) gives a
symmetric encoding ``offset = -ceil(numSteps / 2)`` with ``numSteps = 2^bw - 1``, minus one when
strict: 8-bit strict has numSteps 254 and offset -127 (range [-127 delta, 127 delta]), non-strict
offset -128; aimet_common's ``recompute_grid_params`` writes ``offset = -(2^(bw-1) - 1 +
int(not strict))``, the same. aimet-torch 2.x (v2 quantsim) refuses strict symmetric altogether,
so libpymo's rule is the one AIMET 2.42 files carry. Before this fix the ``.encodings`` writer
wrote -128 and the ``_torch.encodings`` writer -127.
"""

import json

import pytest
import torch

from torchqsim import encodings as enc_io
from torchqsim.export.entries import encoding_entry
from torchqsim.quantization import QuantizeDequantize
from torchqsim.quantsim.torch_encodings import quantizer_entries


@pytest.mark.parametrize("strict, offset", [(True, -127), (False, -128)])
def test_both_writers_give_aimets_symmetric_offset(strict, offset):
    q = QuantizeDequantize((), 8, symmetric=True, strict=strict)
    q.set_range(-1.0, 1.0)
    assert encoding_entry(q, (4,))["offset"] == [offset]
    assert quantizer_entries(q)[0]["offset"] == offset
    text = enc_io.write_encodings({"param_encodings": {"w": encoding_entry(q, (4,))}}, "1.0.0")
    assert json.loads(text)["param_encodings"][0]["offset"] == [offset]


def test_strict_symmetric_in_2_0_0_has_zero_point_0():
    q = QuantizeDequantize((3, 1), 8, symmetric=True, strict=True)
    q.set_range(-torch.ones(3, 1), torch.ones(3, 1))
    entry = dict(encoding_entry(q, (3, 5)), axis=0)
    item = json.loads(enc_io.write_encodings({"param_encodings": {"w": entry}}, "2.0.0"))
    item = item["encodings"][0]
    assert item["output_dtype"] == "int8" and "y_zero_point" not in item
    # an asymmetric entry at offset -127 is not strict: its zero point is kept
    entry.update(is_symmetric=False)
    item = json.loads(enc_io.write_encodings({"param_encodings": {"w": entry}}, "2.0.0"))
    assert item["encodings"][0]["y_zero_point"] == [-1, -1, -1]
