"""The quantization simulator."""

from .sim import QuantizationSimModel, quantizer_entries

__all__ = ["QuantizationSimModel", "quantizer_entries"]
