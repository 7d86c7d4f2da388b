"""Post-training quantization tools (AIMET names): batch-norm folding, cross-layer
equalization, bias correction, AdaRound, SeqMSE, automatic mixed precision and sensitivity
analysis.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.ptq import fold_all_batch_norms
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    >>> len(fold_all_batch_norms(model, torch.randn(1, 3, 8, 8)))
    1
"""

from ._layer_graph import TraceError
from ._sim_slots import CallbackFunc
from .adaround import apply_adaround
from .batch_norm_fold import fold_all_batch_norms
from .bias_correction import QuantParams, correct_bias
from .cross_layer_equalization import equalize_model
from .mixed_precision import MixedPrecisionResult, choose_mixed_precision
from .sensitivity import QuantAnalyzer
from .seq_mse import apply_seq_mse

__all__ = ["fold_all_batch_norms", "equalize_model", "correct_bias", "QuantParams",
           "apply_adaround", "apply_seq_mse", "choose_mixed_precision", "MixedPrecisionResult",
           "QuantAnalyzer",
           "CallbackFunc", "TraceError"]
