"""Quantized ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``: torch's own recurrent kernel, run on
quantized inputs and weights, with quantized outputs.

Quantizer slots:

- ``input_quantizers``: the input sequence (one slot; an initial state ``hx`` passes as given);
- ``param_quantizers``: every parameter (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ...,
  ``_reverse`` ones for bidirectional layers, ``weight_hr_l0`` with ``proj_size``); the quantsim
  config quantizes weights and leaves biases (by name ``bias``) as configured;
- ``output_quantizers``: the output sequence and the final hidden state ``h_n`` (LSTM: also the
  final cell state ``c_n``).

The recurrence runs in floating point between the quantized weights and outputs (the fused
torch kernel, as in ``nn.LSTM.forward``), so with every slot None the outputs are torch's bit for
bit. ``PackedSequence`` inputs are not supported (a clear error).

Example::

    >>> import torch
    >>> from torch import nn
    >>> lstm = nn.LSTM(4, 8, num_layers=2, batch_first=True)
    >>> q = QuantizedLSTM.from_module(lstm)
    >>> x = torch.randn(2, 5, 4)
    >>> out, (h, c) = q(x)
    >>> torch.equal(out, lstm(x)[0]), len(q.output_quantizers), sorted(q.param_quantizers)[:2]
    (True, 3, ['bias_hh_l0', 'bias_hh_l1'])
"""

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .base import QuantizationMixin, quantize_tensor, torch_base_class

__all__ = ["QuantizedRNN", "QuantizedLSTM", "QuantizedGRU"]


class _QuantizedRecurrent(QuantizationMixin):
    """Shared forward of the three recurrent wrappers (see the module docstring)."""

    num_inputs = 1
    num_outputs = 2

    def quantized_forward(self, input: Tensor, hx=None):
        if isinstance(input, PackedSequence):
            raise TypeError(f"{type(self).__name__}: PackedSequence inputs are not supported; "
                            f"pass a padded tensor")
        # Flat weights from the parameters as they are now (torch.export swaps in its own): the
        # base forward then finds them unchanged and runs on the quantized ones set below.
        self._update_flat_weights()
        saved = self._flat_weights
        self._flat_weights = [None if w is None else self.quantized_param(n)
                              for n, w in zip(self._flat_weights_names, saved)]
        try:
            return torch_base_class(type(self)).forward(self, input, hx)
        finally:
            self._flat_weights = saved

    def quantize_outputs(self, outputs):
        output, state = outputs
        q = self.output_quantizers
        if isinstance(state, tuple):  # LSTM: (h_n, c_n)
            return quantize_tensor(q[0], output), tuple(
                quantize_tensor(q[i + 1], s) for i, s in enumerate(state))
        return quantize_tensor(q[0], output), quantize_tensor(q[1], state)


@QuantizationMixin.implements(nn.RNN, onnx_types=("RNN",))
class QuantizedRNN(_QuantizedRecurrent, nn.RNN):
    """Quantized ``nn.RNN`` (tanh or relu cells); slots in the module docstring.

    Example::

        >>> import torch
        >>> q = QuantizedRNN(3, 4)
        >>> [o.shape for o in q(torch.randn(5, 1, 3))]
        [torch.Size([5, 1, 4]), torch.Size([1, 1, 4])]
    """


@QuantizationMixin.implements(nn.GRU, onnx_types=("GRU",))
class QuantizedGRU(_QuantizedRecurrent, nn.GRU):
    """Quantized ``nn.GRU``; slots in the module docstring.

    Example::

        >>> import torch
        >>> q = QuantizedGRU(3, 4, batch_first=True)
        >>> [o.shape for o in q(torch.randn(1, 5, 3))]
        [torch.Size([1, 5, 4]), torch.Size([1, 1, 4])]
    """


@QuantizationMixin.implements(nn.LSTM, onnx_types=("LSTM",))
class QuantizedLSTM(_QuantizedRecurrent, nn.LSTM):
    """Quantized ``nn.LSTM``: three outputs (sequence, ``h_n``, ``c_n``); slots in the module
    docstring.

    Example::

        >>> import torch
        >>> q = QuantizedLSTM(3, 4)
        >>> out, (h, c) = q(torch.randn(5, 1, 3))
        >>> out.shape, h.shape, c.shape
        (torch.Size([5, 1, 4]), torch.Size([1, 1, 4]), torch.Size([1, 1, 4]))
    """

    num_outputs = 3
