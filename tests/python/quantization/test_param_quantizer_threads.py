"""Training-mode forwards of one sim from several threads (issue 14 item 9): they only read the
encodings (weight encodings stay as calibrated, as in aimet-torch 2.42), and a parameter
quantizer without an encoding computes it on first use through an analyzer whose statistics are
shared state, serialised by a lock; concurrent forwards neither fail nor differ from a
single-threaded forward."""

import threading

import torch
from torch import nn

import torchqsim as tq


def _sim(scheme):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    x = torch.randn(2, 3, 8, 8)
    sim = tq.QuantizationSimModel(model, x, quant_scheme=scheme, config_file="per_channel")
    sim.compute_encodings(lambda m: m(x))
    return sim, x


def _run_threads(fn, n_threads=4, iterations=150):
    errors = []

    def work():
        try:
            for _ in range(iterations):
                fn()
        except Exception as e:  # collected: the test reports every failure
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_training_forwards_of_one_sim():
    for scheme in ("tf", "tf_enhanced"):
        sim, x = _sim(scheme)
        sim.model.train()
        with torch.no_grad():
            want = sim.model(x)
        outputs = []

        def forward():
            with torch.no_grad():
                outputs.append(sim.model(x))

        errors = _run_threads(forward)
        assert errors == [], f"{scheme}: {len(errors)} failures, first: {errors[0]}"
        assert all(torch.equal(y, want) for y in outputs), scheme


def test_concurrent_first_use_of_a_param_quantizer():
    # the first forwards race to compute the encoding through the shared analyzer statistics
    from torchqsim.quantization import TfEnhancedEncodingAnalyzer
    from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize
    torch.manual_seed(0)
    w = torch.randn(8, 27)

    def fresh():
        return ParamQuantizeDequantize((8, 1), 8, symmetric=True,
                                       encoding_analyzer=TfEnhancedEncodingAnalyzer((8, 1)))
    with torch.no_grad():
        want = fresh().train()(w)
        for _ in range(20):
            q, outputs = fresh().train(), []
            errors = _run_threads(lambda: outputs.append(q(w)), iterations=1)
            assert errors == [] and len(outputs) == 4
            assert all(torch.equal(y, want) for y in outputs)
