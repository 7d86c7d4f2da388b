"""Typed view of an AIMET quantsim config: frozen dataclasses built by the C reader's binding.

`torchqsim._io.parse_config` / ``load_config`` (``bindings/io_config.cpp`` over
``kernels/io/config.c``, schema in ``kernels/include/qsim/config.h``) construct these classes
directly; nothing after the binding reads a config by string keys. Where the file may leave a
setting out (every section but ``defaults``), the field is ``Optional[bool]``: ``None`` means
unset, i.e. inherited from a less specific section, and is distinct from ``False``. ``defaults``
is resolved: an absent key holds the value AIMET acts on when it is absent (``False`` for each
flag, no kernels, ``"default"`` hardware version).

Name-keyed sections (``params``, ``op_type``, an op type's ``params``) are read-only mappings in
file order, keyed by the parameter or op-type name the file gives.

Example::

    >>> from torchqsim.quantsim.config_file import load_config
    >>> cfg = load_config("default")
    >>> cfg.defaults.params
    ParamSettings(is_quantized=True, is_symmetric=True, block_size=None, decompressed_bw=None)
    >>> cfg.params["bias"].is_quantized, cfg.params["bias"].is_symmetric
    (False, None)
    >>> cfg.supergroups[0].op_list
    ('Conv', 'Relu')
"""

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional

__all__ = ["Defaults", "EncodingConstraints", "Kernel", "OpTypeSettings", "ParamSettings",
           "Precision", "QuantsimConfig", "Supergroup"]


def _frozen_map(items) -> Mapping:
    return MappingProxyType(dict(items))


@dataclass(frozen=True)
class Precision:
    """One side of a supported kernel: ``bitwidth`` and ``dtype``: ``"int"``, ``"float"`` or a
    narrow float format name of :mod:`torchqsim.float_formats` (``"fp8_e4m3"``, ``"mxfp4"``, ...;
    ``bitwidth`` is then its element bits), as the sim's slots name their precision."""

    bitwidth: int
    dtype: str

    def __str__(self) -> str:
        return f"{self.dtype}{self.bitwidth}" if self.dtype in ("int", "float") else self.dtype


@dataclass(frozen=True)
class Kernel:
    """A ``supported_kernels`` entry; ``param`` is None when the op type's kernel has none."""

    activation: Precision
    param: Optional[Precision] = None


@dataclass(frozen=True)
class ParamSettings:
    """``{is_quantized, is_symmetric, block_size, decompressed_bw}`` of a parameter (None:
    unset). ``block_size`` and ``decompressed_bw`` are torchqsim's extension: blockwise weights
    with blocks of ``block_size`` input channels, LPBQ when ``decompressed_bw`` is also set."""

    is_quantized: Optional[bool] = None
    is_symmetric: Optional[bool] = None
    block_size: Optional[int] = None
    decompressed_bw: Optional[int] = None


@dataclass(frozen=True)
class EncodingConstraints:
    """A fixed output range: ``min`` always, ``max`` None when only the minimum is fixed (the
    maximum is then calibrated)."""

    min: float
    max: Optional[float] = None


@dataclass(frozen=True)
class OpTypeSettings:
    """One ``op_type`` entry (None / empty: the file does not set it)."""

    is_input_quantized: Optional[bool] = None
    is_output_quantized: Optional[bool] = None
    is_symmetric: Optional[bool] = None
    per_channel_quantization: Optional[bool] = None
    params: Mapping[str, ParamSettings] = field(default_factory=lambda: _frozen_map({}))
    supported_kernels: tuple[Kernel, ...] = ()
    encoding_constraints: Optional[EncodingConstraints] = None

    def __post_init__(self):
        object.__setattr__(self, "params", _frozen_map(self.params))
        object.__setattr__(self, "supported_kernels", tuple(self.supported_kernels))


@dataclass(frozen=True)
class Defaults:
    """The ``defaults`` section, resolved (absent keys hold what AIMET acts on when absent)."""

    ops_is_input_quantized: bool = False
    ops_is_output_quantized: bool = False
    ops_is_symmetric: bool = False
    params: ParamSettings = ParamSettings(False, False)
    strict_symmetric: bool = False
    unsigned_symmetric: bool = False
    per_channel_quantization: bool = False
    supported_kernels: tuple[Kernel, ...] = ()
    hw_version: str = "default"

    def __post_init__(self):
        object.__setattr__(self, "supported_kernels", tuple(self.supported_kernels))


@dataclass(frozen=True)
class Supergroup:
    """A ``supergroups`` entry: op types (at least two) matched as a chain."""

    op_list: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "op_list", tuple(self.op_list))


@dataclass(frozen=True)
class QuantsimConfig:
    """A whole config file. ``supergroup_pass_list`` names aimet-onnx graph passes: aimet-torch
    reads and ignores it, and so does torchqsim."""

    defaults: Defaults
    params: Mapping[str, ParamSettings]
    op_type: Mapping[str, OpTypeSettings]
    supergroups: tuple[Supergroup, ...] = ()
    model_input_is_input_quantized: Optional[bool] = None
    model_output_is_output_quantized: Optional[bool] = None
    supergroup_pass_list: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "params", _frozen_map(self.params))
        object.__setattr__(self, "op_type", _frozen_map(self.op_type))
        object.__setattr__(self, "supergroups", tuple(self.supergroups))
        object.__setattr__(self, "supergroup_pass_list", tuple(self.supergroup_pass_list))
