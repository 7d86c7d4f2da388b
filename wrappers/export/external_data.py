"""Graphs over the 2 GiB protobuf limit: their large initializers go to a data file beside them.

A protobuf message cannot be serialized past 2 GiB, so a model whose weights are larger (an LLM)
cannot be one ``.onnx`` file. ONNX's answer is *external data*: an initializer records a file
``location`` (relative to the ``.onnx`` file), an ``offset`` and a ``length`` instead of its
bytes. :func:`externalize` moves the bytes of every initializer of at least
:data:`MIN_EXTERNAL_BYTES` out of a graph that would pass the limit, in graph order, into one
data file, and returns that file's content; a graph under the limit is left whole (one file,
as before). onnxruntime and ``onnx.load`` read the data file from the ``.onnx`` file's
directory.

Example::

    >>> import onnx, numpy as np
    >>> from onnx import helper, numpy_helper
    >>> w = numpy_helper.from_array(np.ones((512, 512), np.float32), "w")
    >>> graph = helper.make_graph([], "g", [], [], initializer=[w])
    >>> proto = helper.make_model(graph)
    >>> externalize(proto, "g.onnx.data")[1]       # 1 MiB: far under the limit, kept inline
    []
    >>> split, chunks = externalize(proto, "g.onnx.data", limit=1024)
    >>> [len(c) for c in chunks], split.graph.initializer[0].data_location == onnx.TensorProto.EXTERNAL
    ([1048576], True)
"""

import math

from onnx import ModelProto, TensorProto, helper
from onnx.external_data_helper import set_external_data

from .onnx_graph import ExportError

__all__ = ["MIN_EXTERNAL_BYTES", "PROTOBUF_LIMIT", "externalize", "structure"]

PROTOBUF_LIMIT = 2**31 - 1
"""The largest message protobuf serializes (bytes)."""

MIN_EXTERNAL_BYTES = 1024
"""Initializers smaller than this stay in the ``.onnx`` file (as ``torch.onnx`` saves them)."""


def _data_bytes(proto: ModelProto) -> int:
    """The bytes the initializers' data hold, from their shapes (reading ``raw_data`` would copy
    it, and sizing a message past 2 GiB fails after serializing most of it)."""
    return sum(math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
               for t in proto.graph.initializer)


def externalize(proto: ModelProto, location: str, *, limit: int = PROTOBUF_LIMIT) -> tuple:
    """Moves the data of the large initializers of ``proto`` to external data in ``location``
    when ``proto`` is over ``limit`` bytes.

    Args:
        proto: the model. When it is split, drop it for the returned one: a protobuf message
            keeps the memory of cleared fields until it is freed.
        location: the data file's name, relative to the ``.onnx`` file (e.g.
            ``"model.onnx.data"``).
        limit: the size (bytes) above which ``proto`` is split (the protobuf limit; tests
            lower it to split small graphs).

    Returns:
        ``(model, chunks)``: ``proto`` itself and ``[]`` when it stays whole; else a new model
        whose large initializers are external, and the data file's content as a list of byte
        strings to be written in order.

    Raises:
        ExportError: the graph without its large initializers is still over the protobuf
            limit (too many nodes or small constants).
    """
    if _data_bytes(proto) <= limit and proto.ByteSize() <= limit:
        return proto, []
    chunks, offset = [], 0
    for tensor in proto.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL or not tensor.HasField("raw_data"):
            continue
        data = tensor.raw_data
        if len(data) < MIN_EXTERNAL_BYTES:
            continue
        set_external_data(tensor, location, offset=offset, length=len(data))
        tensor.ClearField("raw_data")
        chunks.append(data)
        offset += len(data)
    if proto.ByteSize() > PROTOBUF_LIMIT:
        raise ExportError(f"the graph is {proto.ByteSize()} bytes without its initializers' data "
                          f"({offset} bytes moved to {location!r}), over the 2 GiB protobuf limit")
    return ModelProto.FromString(proto.SerializeToString()), chunks


def structure(proto: ModelProto) -> ModelProto:
    """``proto`` itself when it holds all its data, else a copy whose external initializers are
    graph inputs of the same type and shape: what the ONNX checker (and its shape inference) can
    check before the data file exists. onnx's checker looks for the file of an external
    initializer, and cannot take a model over 2 GiB in memory.
    """
    external = [t for t in proto.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    if not external:
        return proto
    copy = ModelProto()
    copy.CopyFrom(proto)
    names = {t.name for t in external}
    kept = [t for t in copy.graph.initializer if t.name not in names]
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(kept)
    copy.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                            for t in external)
    return copy
