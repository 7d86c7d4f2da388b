"""`torchqsim.nn`: quantized wrappers of torch modules, the functional-op modules that
``prepare_model`` inserts, and the registry that maps a module class to its quantized class.

Every quantized class derives from :class:`QuantizationMixin` and its torch module, and holds
``input_quantizers``, ``output_quantizers`` and ``param_quantizers`` slots (None = disabled).
Register a wrapper for your own module with ``@torchqsim.register_quantized(MyModule)``
(= :meth:`QuantizationMixin.implements`).

Example::

    >>> import torch
    >>> from torch import nn
    >>> import torchqsim.nn as qnn
    >>> qnn.quantized_class(nn.Conv2d).__name__, qnn.quantized_class(nn.Conv2d).onnx_types
    ('QuantizedConv2d', ('Conv',))
    >>> type(qnn.to_quantized(nn.Linear(2, 2), "fc")).__name__
    'QuantizedLinear'
"""

from .activation import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .base import (UNQUANTIZED_MODULE_TYPES, QuantizationMixin, UnsupportedModuleError,
                   quantized_class, quantized_class_of, to_quantized)
from .conv import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .functional_modules import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from . import (activation, attention, conv, dropout, elementwise, embedding, functional_modules,
               linear, normalization, pooling, recurrent, shape)

#: ``torchqsim.register_quantized``: class decorator registering a quantized class.
register_quantized = QuantizationMixin.implements

__all__ = (["QuantizationMixin", "UnsupportedModuleError", "UNQUANTIZED_MODULE_TYPES",
            "quantized_class", "quantized_class_of", "to_quantized", "register_quantized"] +
           activation.__all__ + attention.__all__ + conv.__all__ + dropout.__all__ +
           elementwise.__all__ + embedding.__all__ + functional_modules.__all__ + linear.__all__ +
           normalization.__all__ + pooling.__all__ + recurrent.__all__ + shape.__all__)
