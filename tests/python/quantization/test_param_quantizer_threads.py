"""Training-mode forwards of one sim from several threads (issue 14 item 9): the parameter
quantizers recompute their encoding from the weights at every training-mode forward, through an
analyzer whose statistics are shared state; the recomputation is serialised, so concurrent
forwards neither fail nor differ from a single-threaded forward."""

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
