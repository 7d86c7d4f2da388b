"""AIMET quantsim config files: read, validate and resolve them (docs/aimet.md §1).

The reading and validation are the C reader (`kernels/io/config.c`, `qsim/config.h`); this module
adds the presets shipped in `configs/` and returns the config as the frozen dataclasses of
:mod:`torchqsim.quantsim.config_types` (a `QuantsimConfig`), built by the binding:

* AIMET's ``"True"``/``"False"`` strings and JSON ``true``/``false`` both read as bools;
* ``defaults`` is resolved: absent keys hold the value AIMET acts on when they are absent
  (``False`` for every flag, no ``supported_kernels``, ``"default"`` for ``hw_version``);
* in every other section an absent flag is ``None`` ("inherit from the less specific section"),
  distinct from ``False``;
* a duplicated key appears once, with its last value (as with ``json.load``).

Invalid files raise `ConfigError` (a ``ValueError``) whose message names the problem, the JSON
path and line:column, also available as ``.path``, ``.line`` and ``.column``.
"""

import functools
import os
import sys
from pathlib import Path

from .._io import ConfigError, parse_config
from .._io import load_config as _load_file
from .config_types import QuantsimConfig

__all__ = ["ConfigError", "load_config", "parse_config", "preset_names", "preset_path"]


@functools.cache
def _preset_dir() -> Path:
    """`configs/` beside the package sources (a source checkout or an editable install, where the
    package directory is `wrappers/`), else the copy setup.py installs under
    ``<prefix>/share/torchqsim/configs`` (resolved once: every sim construction reads a preset)."""
    package = Path(__file__).resolve().parent.parent
    if package.name == "wrappers":
        return package.parent / "configs"
    return Path(sys.prefix) / "share" / "torchqsim" / "configs"


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted.

    Example::

        >>> from torchqsim.quantsim.config_file import preset_names
        >>> preset_names()
        ['default', 'per_channel', 'target']
    """
    return sorted(p.stem for p in _preset_dir().glob("*.json"))


def preset_path(name: str) -> Path:
    """Path of the preset `name` (with or without ``.json``).

    Raises:
        FileNotFoundError: no preset has that name (the message lists the presets).
    """
    stem = name[:-5] if name.endswith(".json") else name
    if stem in preset_names():
        return _preset_dir() / f"{stem}.json"
    raise FileNotFoundError(
        f"no quantsim config file or preset named {name!r}; presets: {', '.join(preset_names())}")


def load_config(path_or_name: str | os.PathLike | None = None) -> QuantsimConfig:
    """Reads a quantsim config file, or a preset from `configs/`, validated and resolved.

    Args:
        path_or_name: a path to an AIMET-style config JSON; or, when no such file exists, the name
            of a preset (``"default"``, ``"per_channel"``, ``"target"``, see `preset_names`);
            ``None`` means ``"per_channel"``, the settings of aimet-torch 2.42's default
            (``config_file=None`` there reads ``default_config_per_channel.json``).

    Returns:
        The config (see the module docstring for what is made explicit).

    Raises:
        ConfigError: the file is not valid JSON or breaks the schema; ``.path``, ``.line`` and
            ``.column`` locate the problem (the message also starts with the file's path).
        FileNotFoundError: neither a file nor a preset has that name.
        OSError: the file exists but cannot be read.

    Example::

        >>> from torchqsim.quantsim.config_file import load_config
        >>> cfg = load_config("default")
        >>> cfg.defaults.params.is_symmetric, cfg.params["bias"].is_quantized
        (True, False)
        >>> cfg.supergroups[0].op_list
        ('Conv', 'Relu')
        >>> load_config("target").op_type["Softmax"].encoding_constraints
        EncodingConstraints(min=0.0, max=1.0)
    """
    if path_or_name is None:
        path_or_name = "per_channel"
    path = os.fspath(path_or_name)
    if os.path.isfile(path):
        return _load_file(path)
    return _load_file(os.fspath(preset_path(path)))
