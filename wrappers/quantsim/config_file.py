"""AIMET quantsim config files: read, validate and resolve them (docs/aimet.md §1).

The reading and validation are the C reader (`kernels/io/config.c`, `qsim/config.h`); this module
adds the presets shipped in `configs/` and returns the config as plain Python data:

* the structure of the JSON file, with real bools (AIMET's ``"True"``/``"False"`` strings and
  JSON ``true``/``false`` both read as bools);
* ``defaults`` is complete: absent keys appear with the value AIMET acts on when they are absent
  (``False`` for every flag, ``[]`` for ``supported_kernels``, ``"default"`` for ``hw_version``);
* every other section keeps only the keys the file sets, since absent there means "inherit from
  the less specific section"; an op type's ``params`` appears only when it names a parameter,
  ``encoding_constraints`` is ``{"min": float, "max": float}``;
* a duplicated key appears once, with its last value (as with ``json.load``).

Invalid files raise `ConfigError` (a ``ValueError``) whose message names the problem, the JSON
path and line:column, also available as ``.path``, ``.line`` and ``.column``.
"""

import os
import sys
from pathlib import Path

from .._io import ConfigError, parse_config
from .._io import load_config as _load_file

__all__ = ["ConfigError", "load_config", "parse_config", "preset_names", "preset_path"]


def _preset_dir() -> Path:
    """`configs/` beside the package sources (a source checkout or an editable install, where the
    package directory is `wrappers/`), else the copy setup.py installs under
    ``<prefix>/share/torchqsim/configs``."""
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


def load_config(path_or_name: str | os.PathLike | None = None) -> dict:
    """Reads a quantsim config file, or a preset from `configs/`, validated and resolved.

    Args:
        path_or_name: a path to an AIMET-style config JSON; or, when no such file exists, the name
            of a preset (``"default"``, ``"per_channel"``, ``"target"``, see `preset_names`);
            ``None`` means ``"default"`` (as AIMET's ``config_file=None``).

    Returns:
        The config as dicts and lists (see the module docstring for what is made explicit).

    Raises:
        ConfigError: the file is not valid JSON or breaks the schema; ``.path``, ``.line`` and
            ``.column`` locate the problem (the message also starts with the file's path).
        FileNotFoundError: neither a file nor a preset has that name.
        OSError: the file exists but cannot be read.

    Example::

        >>> from torchqsim.quantsim.config_file import load_config
        >>> cfg = load_config("default")
        >>> cfg["defaults"]["params"], cfg["params"]["bias"]
        ({'is_quantized': True, 'is_symmetric': True}, {'is_quantized': False})
        >>> cfg["supergroups"][0]
        {'op_list': ['Conv', 'Relu']}
        >>> load_config("target")["op_type"]["Softmax"]
        {'encoding_constraints': {'min': 0.0, 'max': 1.0}}
    """
    if path_or_name is None:
        path_or_name = "default"
    path = os.fspath(path_or_name)
    if os.path.isfile(path):
        return _load_file(path)
    return _load_file(os.fspath(preset_path(path)))
