"""Export of a quantization sim: ONNX graphs and AIMET encodings files (``sim.export``).

:func:`export_sim` writes, for a calibrated ``QuantizationSimModel``, into ``path``:
``{prefix}.onnx`` (FP32 graph, quantize-dequantized weights, no quantizer nodes),
``{prefix}.encodings`` (AIMET 0.6.1 / 1.0.0 / 2.0.0 / 2.1.0, keyed by ONNX tensor and parameter
names that exist in ``{prefix}.onnx``), ``{prefix}_torch.encodings`` (keyed by module, what
``sim.load_encodings`` reads), ``{prefix}_qdq.onnx`` (opset-21 QuantizeLinear/DequantizeLinear
that onnxruntime runs reproducing ``sim.model``) and ``{prefix}.pth`` (the model without
quantizers, quantize-dequantized weights). Files are written together or not at all.

:data:`QDQ_TRANSLATION_TABLE` is the ``custom_translation_table`` that exports the ``qsim`` ops
as standard ONNX ops, for anyone exporting models that call ``torchqsim.functional`` directly.

Command line: ``python -m torchqsim.export {convert,summary,check} --help``.

Example::

    >>> paths = export_sim(sim, "out", "resnet", dummy_input, encoding_version="1.0.0")  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['encodings', 'onnx', 'pth', 'qdq_onnx', 'torch_encodings']
"""

from .cli import missing_names
from .onnx_graph import ExportError
from .qdq_translation import OPSET, QDQ_TRANSLATION_TABLE, grid_type
from .sim_export import export_model, export_sim, original_model

__all__ = ["ExportError", "OPSET", "QDQ_TRANSLATION_TABLE", "export_model", "export_sim",
           "grid_type", "missing_names", "original_model"]
