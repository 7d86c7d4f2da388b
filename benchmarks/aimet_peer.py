"""aimet-torch 2.42's side of bench_aimet.py: run in the AIMET side venv
(scripts/aimet_venv.sh); prints one JSON object of aimet_peer_common.measure's figures.

Usage::

    <venv>/bin/python benchmarks/aimet_peer.py MODEL SCHEME REPEATS STEPS
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "aimet_parity"))
import torchvision_shim  # noqa: F401,E402  (before aimet_torch imports torchvision)

import torch  # noqa: E402
from aimet_torch.common.defs import QuantScheme  # noqa: E402
from aimet_torch.model_preparer import prepare_model  # noqa: E402
from aimet_torch.quantsim import QuantizationSimModel  # noqa: E402

import aimet_peer_common  # noqa: E402

_SCHEMES = {"tf": QuantScheme.post_training_tf,
            "tf_enhanced": QuantScheme.post_training_tf_enhanced}


def main(argv) -> None:
    name, scheme, repeats, steps = argv[0], argv[1], int(argv[2]), int(argv[3])
    torch.set_num_threads(1)

    def make_sim(model, x):
        return QuantizationSimModel(prepare_model(model), x, quant_scheme=_SCHEMES[scheme])

    print(json.dumps(aimet_peer_common.measure(make_sim, name, repeats, steps)))


if __name__ == "__main__":
    main(sys.argv[1:])
