"""`QuantScheme`: how a :class:`~torchqsim.QuantizationSimModel` calibrates and trains encodings.

AIMET names (docs/aimet.md §3.4) plus ``post_training_mse``; strings are accepted where a
scheme is expected:

=====================================================  ==========================  ==========
scheme                                                 strings                     learnable
=====================================================  ==========================  ==========
``post_training_tf`` (alias ``min_max``)               "tf", "min_max"             no
``post_training_tf_enhanced``                          "tf_enhanced"               no
``post_training_percentile``                           "percentile"                no
``post_training_mse``                                  "mse"                       no
``training_range_learning_with_tf_init``               "range_learning_tf_init"    yes
``training_range_learning_with_tf_enhanced_init``      "range_learning_tf_enhanced_init"  yes
=====================================================  ==========================  ==========

Example::

    >>> QuantScheme.parse("tf_enhanced")
    <QuantScheme.post_training_tf_enhanced: 2>
    >>> QuantScheme.parse("range_learning_tf_init").is_range_learning
    True
"""

import enum

from .encoding_analyzer import (EncodingAnalyzer, MinMaxEncodingAnalyzer, MseEncodingAnalyzer,
                                PercentileEncodingAnalyzer, SqnrEncodingAnalyzer)

__all__ = ["QuantScheme"]


class QuantScheme(enum.Enum):
    """Calibration analyzer and trainability of a sim's encodings (AIMET ``QuantScheme``).

    Example::

        >>> QuantScheme.min_max is QuantScheme.post_training_tf
        True
        >>> type(QuantScheme.post_training_percentile.analyzer(()))
        <class 'torchqsim.quantization.encoding_analyzer.PercentileEncodingAnalyzer'>
    """

    post_training_tf = 1
    post_training_tf_enhanced = 2
    training_range_learning_with_tf_init = 3
    training_range_learning_with_tf_enhanced_init = 4
    post_training_percentile = 6
    post_training_mse = 7
    min_max = 1  # alias (newer AIMET name of post_training_tf)

    @classmethod
    def parse(cls, value) -> "QuantScheme":
        """The scheme named by `value`: a :class:`QuantScheme`, one of the strings in the module
        docstring, or an enum member name.

        Raises:
            ValueError: unknown name (the message lists the valid ones).
            TypeError: `value` is neither a string nor a QuantScheme.
        """
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise TypeError(f"quant_scheme must be a QuantScheme or a string, got "
                            f"{type(value).__name__}")
        scheme = _ALIASES.get(value) or cls.__members__.get(value)
        if scheme is None:
            raise ValueError(f"unknown quant_scheme {value!r}; valid: "
                             f"{', '.join(sorted(set(_ALIASES) | set(cls.__members__)))}")
        return scheme

    @property
    def is_range_learning(self) -> bool:
        """Whether encodings (min/max) are trainable parameters in QAT."""
        return self in (QuantScheme.training_range_learning_with_tf_init,
                        QuantScheme.training_range_learning_with_tf_enhanced_init)

    def analyzer(self, shape, percentile: float = 100.0) -> EncodingAnalyzer:
        """A fresh calibration analyzer of encoding shape `shape` for this scheme (range-learning
        schemes calibrate their initial encoding like their post-training counterpart)."""
        if self in (QuantScheme.post_training_tf, QuantScheme.training_range_learning_with_tf_init):
            return MinMaxEncodingAnalyzer(shape)
        if self is QuantScheme.post_training_percentile:
            return PercentileEncodingAnalyzer(shape, percentile=percentile)
        if self is QuantScheme.post_training_mse:
            return MseEncodingAnalyzer(shape)
        return SqnrEncodingAnalyzer(shape)

    @property
    def aimet_name(self) -> str:
        """The name AIMET writes in ``quantizer_args.quant_scheme`` of an encodings file
        (range-learning schemes as their initialisation scheme, as AIMET does)."""
        return {QuantScheme.training_range_learning_with_tf_init: "post_training_tf",
                QuantScheme.training_range_learning_with_tf_enhanced_init:
                    "post_training_tf_enhanced"}.get(self, self.name)


_ALIASES = {
    "tf": QuantScheme.post_training_tf,
    "min_max": QuantScheme.post_training_tf,
    "tf_enhanced": QuantScheme.post_training_tf_enhanced,
    "percentile": QuantScheme.post_training_percentile,
    "mse": QuantScheme.post_training_mse,
    "range_learning_tf_init": QuantScheme.training_range_learning_with_tf_init,
    "range_learning_tf_enhanced_init": QuantScheme.training_range_learning_with_tf_enhanced_init,
}
