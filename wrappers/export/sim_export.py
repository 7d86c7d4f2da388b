"""``sim.export``: the five files an integer runtime and ``load_encodings`` consume.

For a quantized model (a sim's ``sim.model``, or any model holding
:class:`torchqsim.nn.QuantizationMixin` modules) :func:`export_model` writes into ``path``:

- ``{prefix}.onnx``: the FP32 graph (no quantizer nodes) with quantize-dequantized weights,
  from the dynamo exporter. The tensors the quantizers apply to are found by exporting with
  marker nodes in the quantizer slots and splicing the markers out (:mod:`.markers`; one
  capture serves this graph and the QDQ graph: :mod:`.one_capture`), so the
  names below are names of this very graph; the activation tensor of each quantizer slot is
  recorded in the model's metadata (:func:`.quantizer_slots.record_slots`) for ``load_encodings``.
- ``{prefix}.encodings``: one entry per enabled quantizer, activations keyed by the ONNX tensor
  they quantize (a module's input or output), parameters by their name (= the ONNX initializer),
  in AIMET format ``encoding_version`` (0.6.1, 1.0.0, 2.0.0 or 2.1.0: :mod:`.encodings_v21`),
  with ``quantizer_args`` and ``excluded_layers``. Every name is checked to exist in
  ``{prefix}.onnx``.
- ``{prefix}_torch.encodings``: the encodings keyed by module, in the layout
  ``sim.load_encodings`` reads (``QuantizationSimModel.quantizer_encodings_dict``: AIMET's
  ``_torch.encodings``, version 0.6.1 entries), also for quantizers the dummy input does not
  reach (which ``{prefix}.encodings`` cannot name); written as sorted, indented JSON.
- ``{prefix}_qdq.onnx``: the model with QuantizeLinear / DequantizeLinear pairs (opset 21, or 23
  when a quantizer uses float4e2m1: :func:`qdq_opset`; :mod:`.qdq_translation`), which
  onnxruntime runs reproducing ``model`` (the float4 graphs excepted: docs/formats.md §4).
- ``{prefix}.pth``: ``torch.save`` of the model without quantizers (each quantized module turned
  back into its torch class) with quantize-dequantized weights; load it with
  ``torch.load(..., weights_only=False)`` (it pickles modules; ``torchqsim`` must be importable).

A graph over the 2 GiB protobuf limit (an LLM's) keeps its initializers in a data file beside
it, ``{prefix}.onnx.data`` and ``{prefix}_qdq.onnx.data`` (ONNX external data:
:mod:`.external_data`); onnxruntime and ``onnx.load`` find them next to the ``.onnx`` file.

Everything is computed before anything is written; the files are then written as one set
(:func:`torchqsim._atomic.write_files`): staged beside the targets and published in one step, so
a failed or killed export never leaves a mix of old and new files (a killed one is completed or
discarded by the next export into the same directory). The model is left as it
was (quantizers, parameters, training flags). Exporting the same model twice gives
byte-identical encodings files.

Example::

    >>> import os, tempfile, torch
    >>> from torchqsim.nn import QuantizedLinear
    >>> from torchqsim.quantization import QuantizeDequantize
    >>> model = torch.nn.Sequential(QuantizedLinear(4, 2))
    >>> model[0].output_quantizers[0] = QuantizeDequantize((), 8, symmetric=False)
    >>> model[0].output_quantizers[0].set_range(-1.0, 1.0)
    >>> d = tempfile.mkdtemp()
    >>> _ = export_model(model, d, "lin", torch.randn(3, 4))
    >>> sorted(os.listdir(d))      # no torch_encodings given: no lin_torch.encodings
    ['lin.encodings', 'lin.onnx', 'lin.pth', 'lin_qdq.onnx']
"""

import copy
import io
import json
import os
import warnings
from typing import Iterable, Optional

import torch
from torch import nn

from .. import encodings as enc_io
from .._forward import eval_mode
from ..nn import QuantizationMixin
from ..nn.base import torch_base_class
from ..quantization.block_float_quantizer import BlockFloatQuantizeDequantize
from ..quantization.float_quantizer import FloatQuantizeDequantize
from ..quantization.param_quantizer import ParamQuantizeDequantize
from .._atomic import write_files
from . import encodings_v21
from .entries import encoding_entry
from .external_data import PROTOBUF_LIMIT, externalize, structure
from .float_translation import FLOAT4_FORMATS
from .constant_qparams import constant_qparams
from .markers import markers_in_place, splice_markers
from .on_host import input_on_host, on_host
from .one_capture import export_both, one_capture_applies
from .onnx_graph import (ExportError, check_model, export_onnx, names_missing_from, registry,
                         tensor_shapes)
from .qdq_translation import OPSET
from .quantizer_slots import quantizer_slots, record_slots

__all__ = ["export_model", "export_sim", "original_model"]



def _check_arguments(path, filename_prefix, encoding_version) -> None:
    if encoding_version not in enc_io.SUPPORTED_VERSIONS + (encodings_v21.VERSION,):
        raise ValueError(f"encoding_version must be one of {', '.join(enc_io.SUPPORTED_VERSIONS)}, "
                         f"{encodings_v21.VERSION}, got {encoding_version!r}")
    if not isinstance(filename_prefix, str) or not filename_prefix or \
            os.path.basename(filename_prefix) != filename_prefix or \
            filename_prefix in (".", "..") or filename_prefix.startswith(".torchqsim-"):
        raise ValueError(f"filename_prefix must be a non-empty file name without a directory "
                         f"part (not '.', '..' or '.torchqsim-*'), got {filename_prefix!r}")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"path {os.fspath(path)!r} is not an existing directory")


def qdq_opset(slots) -> int:
    """The opset of the QDQ graph: 23 when a quantizer's format needs float4e2m1 (FP4, MXFP4,
    NVFP4; export/float_translation.py), else 21 (:data:`.qdq_translation.OPSET`)."""
    def float4(q):
        if isinstance(q, BlockFloatQuantizeDequantize):
            return q.format_name in FLOAT4_FORMATS
        return isinstance(q, FloatQuantizeDequantize) and \
            (q.exponent_bits, q.mantissa_bits, q.kind) == (2, 1, "finite")
    return 23 if any(float4(s.quantizer) for s in slots) else OPSET


def _ready_slots(model: nn.Module) -> list:
    """The enabled quantizer slots of ``model``, each holding an encoding.

    A parameter quantizer without one computes it from its parameter, as it would in the first
    forward (``ParamQuantizeDequantize``); an activation quantizer without one is an error.
    """
    slots = quantizer_slots(model)
    modules = dict(model.named_modules())
    with eval_mode(model), torch.no_grad():
        for s in slots:
            if isinstance(s.quantizer, ParamQuantizeDequantize) and \
                    not s.quantizer.is_initialized():
                s.quantizer(getattr(modules[s.module_name], s.key))
    missing = [s.path for s in slots if not s.quantizer.is_initialized()]
    if missing:
        raise ExportError(f"{len(missing)} enabled quantizers have no encoding: "
                          f"{', '.join(missing)}; run sim.compute_encodings(...) (or load "
                          f"encodings) before exporting, or disable them")
    return slots


def original_model(model: nn.Module, share_tensors: bool = False) -> nn.Module:
    """A deep copy of ``model`` with every quantized module turned back into its torch class.

    The copy shares nothing with ``model`` (unless ``share_tensors``); quantizer slots are
    dropped, parameters are kept as they are (inside :func:`.markers.markers_in_place` they are
    the quantize-dequantized ones).

    Args:
        model: the quantized model.
        share_tensors: the copy holds ``model``'s parameters and buffers themselves rather than
            copies (to pickle it at once without a second copy of an LLM's weights).

    Example::

        >>> from torchqsim.nn import QuantizedLinear
        >>> type(original_model(torch.nn.Sequential(QuantizedLinear(2, 2)))[0]).__name__
        'Linear'
    """
    memo = {id(t): t for t in (*model.parameters(), *model.buffers())} if share_tensors else {}
    model = copy.deepcopy(model, memo)
    slots = ("input_quantizers", "output_quantizers", "param_quantizers")

    def plain(module):
        base = torch_base_class(type(module))
        unwrapped = base.__new__(base)
        unwrapped.__dict__ = dict(module.__dict__)
        unwrapped._modules = {k: v for k, v in module._modules.items() if k not in slots}
        return unwrapped

    for name, module in list(model.named_modules()):
        if isinstance(module, QuantizationMixin) and name:
            model.set_submodule(name, plain(module))
    if isinstance(model, torch.fx.GraphModule):
        # Unpickling re-traces with the recorded tracer class; prepare_model's needs arguments,
        # torch's default (every module a leaf on reload) rebuilds the same graph.
        model._tracer_cls, model._tracer_extras = None, {}
    return plain(model) if isinstance(model, QuantizationMixin) else model


def _add(sections: dict, section: str, name: str, entry: dict, path: str, owners: dict) -> None:
    """Adds ``entry`` under ``name``; a second quantizer on the same tensor must agree."""
    existing = sections[section].get(name)
    if existing is None:
        sections[section][name] = entry
        owners[name] = path
    elif existing != entry:
        raise ExportError(
            f"quantizers {owners[name]!r} and {path!r} both apply to ONNX tensor {name!r} with "
            f"different encodings; an encodings file holds one encoding per tensor, so disable "
            f"one of them (set its slot to None) before exporting")


def _onnx_encodings(slots, names: dict, shapes: dict) -> dict:
    """The encodings dict keyed by ONNX names, for the slots the export reached."""
    sections = {"activation_encodings": {}, "param_encodings": {}}
    owners = {}
    for i, slot in enumerate(slots):
        if i not in names:
            continue  # the dummy input does not reach this quantizer's module
        section = "param_encodings" if slot.kind == "param" else "activation_encodings"
        try:
            entry = encoding_entry(slot.quantizer, shapes.get(names[i]))
        except (TypeError, ValueError) as e:
            raise ExportError(f"quantizer {slot.path!r}: {e}") from e
        _add(sections, section, names[i], entry, slot.path, owners)
    return sections


def _check_names(onnx_named: dict, proto) -> None:
    missing = names_missing_from(proto, onnx_named)
    if missing:
        raise ExportError(f"internal error: encodings name tensors missing from the ONNX graph "
                          f"or params that are not initializers: {missing}")


def _serialize(proto, what: str) -> bytes:
    data = proto.SerializeToString()
    if len(data) > PROTOBUF_LIMIT:  # externalize keeps this from happening
        raise ExportError(f"internal error: {what} is {len(data)} bytes, over the 2 GiB "
                          f"protobuf limit")
    return data


def _pickled(model: nn.Module) -> memoryview:
    """``torch.save`` of ``model`` (a view of the buffer: an LLM's is not copied again)."""
    pth = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model, pth)
    return pth.getbuffer()


def _graphs(model, slots, dummy_input):
    """(FP32 ModelProto with markers, QDQ ModelProto, ``{prefix}.pth``'s content): from one
    capture where it applies and succeeds (:mod:`.one_capture`), else from two exports."""
    opsets = (OPSET, qdq_opset(slots))
    registries = tuple(registry(o) for o in opsets)
    modules = dict(model.named_modules())
    with markers_in_place(model, slots):
        pth = _pickled(original_model(model, share_tensors=True))
        params = {i: (_join(s.module_name, s.key), modules[s.module_name]._parameters[s.key])
                  for i, s in enumerate(slots) if s.kind == "param"}
    both = one_capture_applies(registries) and \
        export_both(model, slots, dummy_input, params, registries, opsets)
    if both:
        return (*both, pth)
    with markers_in_place(model, slots):
        fp32 = export_onnx(model, dummy_input, "the FP32 graph", keep_initializers=True)
    with constant_qparams(model):
        qdq = export_onnx(model, dummy_input, "the QDQ graph", opset=opsets[1])
    return fp32, qdq, pth


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _fp32_names(proto, slots, data_location: str):
    """(spliced FP32 ModelProto, its external data chunks, {slot index: tensor name})."""
    proto, data = externalize(proto, data_location)
    try:
        names = splice_markers(proto)
    except ValueError as e:
        raise ExportError(f"a quantizer ran more than once in one forward (a module called "
                          f"twice; prepare_model duplicates such modules): {e}") from e
    check_model(structure(proto), "the FP32 graph")
    record_slots(proto, slots, names)
    return proto, data, names


def export_model(model: nn.Module, path, filename_prefix: str, dummy_input,
                 encoding_version: str = enc_io.DEFAULT_VERSION, *,
                 torch_encodings: Optional[dict] = None,
                 quantizer_args: Optional[dict] = None,
                 excluded_layers: Iterable[str] = ()) -> dict:
    """Writes the export files of a quantized model (see the module docstring).

    Args:
        model: a model holding quantized modules with calibrated quantizers (``sim.model``).
        path: an existing directory.
        filename_prefix: the file name prefix (no directory part).
        dummy_input: a tensor, a tuple of positional inputs or a dict of keyword inputs.
        encoding_version: "0.6.1", "1.0.0", "2.0.0" or "2.1.0" (of ``{prefix}.encodings``;
            2.1.0 adds float and block-format entries: :mod:`torchqsim.export.encodings_v21`).
        torch_encodings: the content of ``{prefix}_torch.encodings`` (a JSON-serializable dict:
            ``sim.quantizer_encodings_dict()``), or None to not write that file.
        quantizer_args: AIMET's ``quantizer_args`` (the sim's defaults), or None.
        excluded_layers: names of the layers excluded from quantization.

    Returns:
        ``{"onnx", "encodings", "torch_encodings", "qdq_onnx", "pth"}`` -> path written
        (``torch_encodings`` only when given), plus ``"onnx_data"`` and ``"qdq_onnx_data"``
        when a graph is over the protobuf limit and has a data file.

    Raises:
        ValueError: a bad argument (named).
        NotADirectoryError: ``path`` is not a directory.
        ExportError: the model cannot be exported (untraceable, uninitialized quantizers,
            conflicting encodings on one tensor); nothing was written.
        torchqsim.encodings.EncodingsError: an encoding cannot be written in
            ``encoding_version`` (e.g. per-block encodings in 0.6.1); nothing was written.
        OSError: a file cannot be written; nothing was written.
    """
    _check_arguments(path, filename_prefix, encoding_version)
    slots = _ready_slots(model)
    dummy_input = input_on_host(dummy_input)
    with on_host(model), eval_mode(model), torch.no_grad():
        fp32, qdq, pth = _graphs(model, slots, dummy_input)
    fp32, fp32_data, names = _fp32_names(fp32, slots, f"{filename_prefix}.onnx.data")
    qdq, qdq_data = externalize(qdq, f"{filename_prefix}_qdq.onnx.data")
    check_model(structure(qdq), "the QDQ graph")
    onnx_named = _onnx_encodings(slots, names, tensor_shapes(fp32))
    _check_names(onnx_named, fp32)
    onnx_named.update(excluded_layers=list(excluded_layers), quantizer_args=quantizer_args,
                      producer=None if encoding_version == "0.6.1" else _producer())
    files = {
        "onnx": (f"{filename_prefix}.onnx", _serialize(fp32, "the FP32 graph")),
        "encodings": (f"{filename_prefix}.encodings",
                      _encodings_text(onnx_named, encoding_version, model, slots, names)),
        "torch_encodings": (f"{filename_prefix}_torch.encodings",
                            None if torch_encodings is None else _json(torch_encodings)),
        "qdq_onnx": (f"{filename_prefix}_qdq.onnx", _serialize(qdq, "the QDQ graph")),
        "pth": (f"{filename_prefix}.pth", pth),
        "onnx_data": (f"{filename_prefix}.onnx.data", fp32_data or None),
        "qdq_onnx_data": (f"{filename_prefix}_qdq.onnx.data", qdq_data or None),
    }
    files = {kind: f for kind, f in files.items() if f[1] is not None}
    write_files(path, dict(files.values()))
    return {kind: os.path.join(os.fspath(path), name) for kind, (name, _) in files.items()}


def _encodings_text(onnx_named: dict, version: str, model, slots, names) -> bytes:
    """``{prefix}.encodings``; 2.1.0 adds the float and block-format entries (encodings_v21)."""
    if version != encodings_v21.VERSION:
        return enc_io.write_encodings(onnx_named, version).encode()
    try:
        floats = encodings_v21.float_entries(model, slots, names)
    except ValueError as e:
        raise ExportError(str(e)) from e
    return encodings_v21.write_v21(onnx_named, floats).encode()


def _producer() -> dict:
    from .. import __version__  # the package's __init__ may still be running at import time

    return {"package": "torchqsim", "version": __version__}


def export_sim(sim, path, filename_prefix: str, dummy_input,
               encoding_version: str = enc_io.DEFAULT_VERSION) -> dict:
    """``sim.export(...)``: the five export files of a ``QuantizationSimModel``.

    :func:`export_model` of ``sim.model`` with ``{prefix}_torch.encodings`` =
    ``sim.quantizer_encodings_dict()`` (what ``sim.load_encodings`` reads) and the sim's
    ``quantizer_args`` and ``excluded_layers``.

    Args:
        sim: the calibrated ``QuantizationSimModel``.
        path, filename_prefix, dummy_input, encoding_version: as in :func:`export_model`.

    Returns:
        ``{"onnx", "encodings", "torch_encodings", "qdq_onnx", "pth"}`` -> path written.

    Raises:
        As :func:`export_model`.

    Example::

        >>> paths = export_sim(sim, "/tmp", "model", dummy_input)  # doctest: +SKIP
        >>> sim.load_encodings(paths["torch_encodings"])  # doctest: +SKIP
    """
    _check_arguments(path, filename_prefix, encoding_version)
    _ready_slots(sim.model)
    torch_encodings = sim.quantizer_encodings_dict()
    return export_model(sim.model, path, filename_prefix, dummy_input, encoding_version,
                        torch_encodings=torch_encodings,
                        quantizer_args=torch_encodings["quantizer_args"],
                        excluded_layers=torch_encodings["excluded_layers"])


def _json(data: dict) -> bytes:
    """Deterministic JSON text: sorted keys, 2-space indent (as ``sim.save_encodings_to_json``)."""
    try:
        return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    except ValueError as e:
        raise ExportError(f"torch encodings hold a non-finite number: {e}") from e
