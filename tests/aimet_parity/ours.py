"""The torchqsim side of the parity suite: the same case as aimet_oracle.py, recorded the same
way (slot key ``"<module>.<input|output|param>.<key>"`` -> enabled, dtype, bitwidth, symmetric,
shape, scale, offset, min, max)."""

import torch

import models
from torchqsim.quantization.float_quantizer import FloatQuantizeDequantize
from torchqsim.quantsim import QuantizationSimModel


def _tensor(t):
    return t.detach().flatten().double().tolist()


def quantizer_record(q) -> dict:
    if q is None:
        return {"enabled": False}
    if isinstance(q, FloatQuantizeDequantize):
        return {"enabled": True, "dtype": "float", "bitwidth": 16}
    rec = {"enabled": True, "dtype": "int", "bitwidth": int(q.bitwidth),
           "symmetric": bool(q.symmetric), "shape": list(q.shape)}
    if q.is_initialized():
        enc = q.get_encoding()
        rec.update(scale=_tensor(enc.scale), offset=_tensor(-enc.zero_point.double()),
                   min=_tensor(enc.min), max=_tensor(enc.max))
    return rec


def records(sim) -> dict:
    return models.slot_records(sim.named_qmodules(), quantizer_record)


def make_sim(case: dict, calibrate: bool = True, clipping: bool = True):
    """The sim of `case`, calibrated like the oracle's (unless not `calibrate`), and the model's
    data batches. It rounds as AIMET's no-grad forwards do (``aimet_eval_rounding``: the oracle
    runs under no_grad), which differs from the default only at half-step ties, and gives fixed
    output ranges AIMET's grid (``aimet_fixed_range_clipping``, unless not `clipping`)."""
    data = models.batches(case["model"])
    sim = QuantizationSimModel(models.build(case["model"]), data[0], quant_scheme=case["scheme"],
                               default_output_bw=case["act_bw"], default_param_bw=case["param_bw"],
                               config_file=case["config"], aimet_eval_rounding=True,
                               aimet_fixed_range_clipping=clipping)

    def run_batches(m, _):
        for x in data[:3]:
            m(x)

    if calibrate:
        sim.compute_encodings(run_batches, None)
    return sim, data


def run_case(case: dict) -> tuple[dict, torch.Tensor]:
    """(records, output on the test batch) of our sim for `case`."""
    sim, data = make_sim(case)
    with torch.no_grad():
        return records(sim), sim.model(data[3])
