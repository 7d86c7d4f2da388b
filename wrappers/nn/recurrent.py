"""Quantized ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``: torch's own recurrent kernel, run on
quantized inputs and weights, with quantized outputs.

Quantizer slots (aimet-torch 2.42's):

- ``input_quantizers``: the input sequence, then the initial hidden state ``h0`` (LSTM: then the
  initial cell state ``c0``), given positionally or as ``hx=`` (``(h0, c0)`` for an LSTM); a call
  without an initial state leaves the state slots unused (torch's zeros are not quantized);
- ``param_quantizers``: every parameter (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ...,
  ``_reverse`` ones for bidirectional layers, ``weight_hr_l0`` with ``proj_size``); the quantsim
  config quantizes weights and leaves biases (by name ``bias``) as configured;
- ``output_quantizers``: the output sequence and the final hidden state ``h_n`` (LSTM: also the
  final cell state ``c_n``).

The recurrence runs in floating point between the quantized weights and outputs (the fused
torch kernel, as in ``nn.LSTM.forward``), so with every slot None the outputs are torch's bit for
bit. ``PackedSequence`` inputs are not supported (a clear error). In a sim, the config enables
the state slots as any input slot: a model input ``h0`` is quantized (``model_input``), a state
another op computes is quantized by that op's output quantizer.

Example::

    >>> import torch
    >>> from torch import nn
    >>> lstm = nn.LSTM(4, 8, num_layers=2, batch_first=True)
    >>> q = QuantizedLSTM.from_module(lstm)
    >>> x = torch.randn(2, 5, 4)
    >>> out, (h, c) = q(x)
    >>> torch.equal(out, lstm(x)[0]), len(q.input_quantizers), len(q.output_quantizers)
    (True, 3, 3)
    >>> sorted(q.param_quantizers)[:2]
    ['bias_hh_l0', 'bias_hh_l1']
"""

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .base import QuantizationMixin, quantize_tensor, torch_base_class

__all__ = ["QuantizedRNN", "QuantizedLSTM", "QuantizedGRU"]


class _QuantizedRecurrent(QuantizationMixin):
    """Shared forward of the three recurrent wrappers (see the module docstring)."""

    num_inputs = 2  # input, h0 (LSTM: 3, with c0)
    num_outputs = 2

    def forward(self, input, hx=None):
        """Quantize the input and the initial state, run the kernel, quantize the outputs."""
        return super().forward(input) if hx is None else super().forward(input, hx)

    @staticmethod
    def slot_arguments(args: tuple, kwargs: dict) -> tuple:
        """The arguments of a call in input-slot order (``input, h0[, c0]``), for the module
        graph (torchqsim/graph/module_graph.py), from a call's positional and keyword arguments.

        Example::

            >>> QuantizedLSTM.slot_arguments(("x",), {"hx": ("h0", "c0")})
            ('x', 'h0', 'c0')
        """
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        states = () if hx is None else tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
        return (args[0], *states)

    @staticmethod
    def slot_outputs(outputs: tuple) -> tuple:
        """The outputs of a call in output-slot order (``output, h_n[, c_n]``).

        Example::

            >>> QuantizedLSTM.slot_outputs(("out", ("h", "c")))
            ('out', 'h', 'c')
        """
        output, state = outputs
        return (output, *state) if isinstance(state, tuple) else (output, state)

    def quantize_inputs(self, args: tuple) -> tuple:
        """The input through slot 0; ``h0`` (an LSTM's ``(h0, c0)``) through slots 1 (and 2)."""
        q = self.input_quantizers
        input = quantize_tensor(q[0], args[0])
        if len(args) < 2:
            return (input,)
        if isinstance(args[1], tuple):
            return input, tuple(quantize_tensor(q[1 + i], h) for i, h in enumerate(args[1]))
        return input, quantize_tensor(q[1], args[1])

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

    num_inputs = 3
    num_outputs = 3
