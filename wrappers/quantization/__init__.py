"""Calibration: encoding analyzers and the `QuantizeDequantize` quantizer module.

Example::

    >>> import torch
    >>> from torchqsim.quantization import QuantizeDequantize, SqnrEncodingAnalyzer
    >>> q = QuantizeDequantize((), 8, symmetric=False, encoding_analyzer=SqnrEncodingAnalyzer())
    >>> with q.compute_encodings():
    ...     _ = q(torch.linspace(-1.0, 3.0, 1001))
    >>> q.get_encoding().zero_point
    tensor(64, dtype=torch.int32)
"""

from .encoding_analyzer import (Encoding, EncodingAnalyzer, MinMaxEncodingAnalyzer,
                                MseEncodingAnalyzer, PercentileEncodingAnalyzer,
                                SqnrEncodingAnalyzer)
from .grid import Grid, GridKind
from .block_float_quantizer import BlockFloatQuantizeDequantize
from .float_quantizer import FloatQuantizeDequantize
from .calibration import compute_encodings
from .quantizer import QuantizeDequantize
from .tf_enhanced import TfEnhancedEncodingAnalyzer

__all__ = ["Encoding", "EncodingAnalyzer", "MinMaxEncodingAnalyzer", "SqnrEncodingAnalyzer",
           "PercentileEncodingAnalyzer", "MseEncodingAnalyzer", "TfEnhancedEncodingAnalyzer",
           "QuantizeDequantize", "FloatQuantizeDequantize", "BlockFloatQuantizeDequantize",
           "compute_encodings", "Grid", "GridKind"]
