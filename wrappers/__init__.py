"""torchqsim: quantization simulation for PyTorch, AIMET QuantSim compatible.

`QuantizationSimModel` wraps a trained model with quantizers as an AIMET-style config directs,
calibrates it, trains it (QAT) and exports it (ONNX + encodings); `torchqsim.ptq` holds the
post-training tools. The numerics are C kernels registered as torch ops (`torch.ops.qsim.*`);
`torchqsim.functional` is the functional API over them.

Example::

    >>> import torch, torchqsim as tq
    >>> x = torch.tensor([0.26, -1.0, 3.0])
    >>> tq.functional.quantize_dequantize(x, torch.tensor(0.5), torch.tensor(0), -4, 3)
    tensor([ 0.5000, -1.0000,  1.5000])
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    >>> sim = tq.QuantizationSimModel(model, torch.randn(2, 4), quant_scheme="tf")
    >>> sim.compute_encodings(lambda m: m(torch.randn(16, 4)))
    >>> sim.model(torch.randn(2, 4)).shape
    torch.Size([2, 4])
"""

import torch  # noqa: F401  (loads libtorch before the op library)

from . import _C, _io  # noqa: F401  (registers the qsim ops)
from . import ops  # noqa: F401  (fake and autograd registrations)
from . import _float_ops  # noqa: F401  (the same for the float-format ops)
from . import _stats_ops  # noqa: F401  (fake registrations of the calibration ops)
from . import _runtime_ops  # noqa: F401  (fake registration of the target-mode op)
from . import functional
from . import quantization
from . import nn
from .nn import register_quantized
from . import graph, prepare
from .prepare import PrepareError, prepare_model
from .quantization.scheme import QuantScheme
from .quantsim import QuantizationSimModel
from .quantsim import config_file as quantsim_config
from . import ptq
from . import distributed

__all__ = ["PrepareError", "QuantScheme", "QuantizationSimModel", "distributed", "functional",
           "graph", "nn", "prepare", "prepare_model", "ptq", "quantization", "quantsim_config",
           "register_quantized"]
__version__ = "0.1.0"
