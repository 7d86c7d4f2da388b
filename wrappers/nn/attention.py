"""Quantized ``nn.MultiheadAttention``, written out so that its internals can be quantized.

Quantizer slots:

- ``input_quantizers``: query, key, value;
- ``param_quantizers``: the parameters the module owns (``in_proj_weight`` or
  ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``, ``in_proj_bias``, ``bias_k``, ``bias_v``);
- ``out_proj``: a :class:`~torchqsim.nn.QuantizedLinear` sharing the output projection's
  parameters; its input quantizer quantizes the attention context (probabilities @ V), its
  ``param_quantizers`` the output projection weight and bias;
- ``intermediate_quantizers``: ``"q"``, ``"k"``, ``"v"`` (in-projection outputs), ``"scores"``
  (scaled QK^T plus mask, the softmax input), ``"probs"`` (softmax output);
- ``output_quantizers``: the attention output and the attention weights (``need_weights``).

The computation is torch's (``F.multi_head_attention_forward``, same op sequence, so with every
slot None the outputs are bit for bit torch's slow path; torch's inference fast path, used
under ``no_grad`` in eval mode, may differ in the last bits). With ``need_weights=False`` and the
``scores``/``probs`` slots None the fused ``F.scaled_dot_product_attention`` runs, as in torch.
Mask validation and the in-projection use torch's own helpers.

Example::

    >>> import torch
    >>> from torch import nn
    >>> mha = nn.MultiheadAttention(8, 2, batch_first=True)
    >>> q = QuantizedMultiheadAttention.from_module(mha)
    >>> x = torch.randn(2, 5, 8)
    >>> torch.equal(q(x, x, x)[0], mha(x, x, x)[0])
    True
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import QuantizationMixin, quantize_tensor
from .linear import QuantizedLinear

__all__ = ["QuantizedMultiheadAttention"]


def _seq_first(query: Tensor, key: Tensor, value: Tensor):
    """Transpose batch-first inputs to (L, N, E), keeping shared tensors shared (as torch)."""
    if key is value:
        if query is key:
            query = key = value = query.transpose(1, 0)
        else:
            query, key = (x.transpose(1, 0) for x in (query, key))
            value = key
    else:
        query, key, value = (x.transpose(1, 0) for x in (query, key, value))
    return query, key, value


@QuantizationMixin.implements(nn.MultiheadAttention, onnx_types=("MultiheadAttention",))
class QuantizedMultiheadAttention(QuantizationMixin, nn.MultiheadAttention):
    """Quantized ``nn.MultiheadAttention`` (see the module docstring for its quantizer slots).

    Example::

        >>> q = QuantizedMultiheadAttention(8, 2)
        >>> list(q.intermediate_quantizers), len(q.output_quantizers)
        (['q', 'k', 'v', 'scores', 'probs'], 2)
    """

    num_inputs = 3
    num_outputs = 2
    INTERMEDIATES = ("q", "k", "v", "scores", "probs")

    def __quant_init__(self) -> None:
        super().__quant_init__()
        self.intermediate_quantizers = nn.ModuleDict({k: None for k in self.INTERMEDIATES})
        self.out_proj = QuantizedLinear.from_module(self.out_proj)

    def _intermediate(self, name: str, x: Tensor) -> Tensor:
        return quantize_tensor(self.intermediate_quantizers[name], x)

    def quantized_forward(self, query: Tensor, key: Tensor, value: Tensor,
                          key_padding_mask: Tensor | None = None, need_weights: bool = True,
                          attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                          is_causal: bool = False):
        batch_first = self.batch_first and query.dim() == 3
        if batch_first:
            query, key, value = _seq_first(query, key, value)
        out, weights = self._attention(query, key, value, key_padding_mask, need_weights,
                                       attn_mask, average_attn_weights, is_causal)
        return (out.transpose(1, 0) if batch_first else out), weights

    def _in_projection(self, query: Tensor, key: Tensor, value: Tensor):
        bias = self.quantized_param("in_proj_bias") if self.in_proj_bias is not None else None
        if self._qkv_same_embed_dim:
            q, k, v = F._in_projection_packed(query, key, value,
                                              self.quantized_param("in_proj_weight"), bias)
        else:
            b_q, b_k, b_v = (None, None, None) if bias is None else bias.chunk(3)
            q, k, v = F._in_projection(query, key, value, self.quantized_param("q_proj_weight"),
                                       self.quantized_param("k_proj_weight"),
                                       self.quantized_param("v_proj_weight"), b_q, b_k, b_v)
        return self._intermediate("q", q), self._intermediate("k", k), self._intermediate("v", v)

    def _attention(self, query, key, value, key_padding_mask, need_weights, attn_mask,
                   average_attn_weights, is_causal):
        """``F.multi_head_attention_forward`` on (L, N, E) or unbatched (L, E) inputs."""
        heads = self.num_heads
        is_batched = F._mha_shape_check(query, key, value, key_padding_mask, attn_mask, heads)
        if not is_batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        tgt_len, bsz, embed_dim = query.shape
        unfused = need_weights or any(self.intermediate_quantizers[k] is not None
                                      for k in ("scores", "probs"))
        attn_mask, key_padding_mask, is_causal = self._canonical_masks(
            query, attn_mask, key_padding_mask, is_causal, unfused)
        if embed_dim != self.embed_dim:
            raise ValueError(f"{type(self).__name__}: expected embedding dimension "
                             f"{self.embed_dim}, got {embed_dim}")
        q, k, v = self._in_projection(query, key, value)
        attn_mask = _check_attn_mask(attn_mask, (tgt_len, key.shape[0]), bsz * heads)
        q, k, v, attn_mask = self._split_heads(q, k, v, attn_mask, key_padding_mask)
        if unfused:
            context, probs = self._unfused_context(q, k, v, attn_mask)
        else:
            context = self._fused_context(q, k, v, attn_mask, is_causal)
        out = self.out_proj(context.reshape(tgt_len * bsz, embed_dim))
        out = out.view(tgt_len, bsz, out.size(1))
        weights = None
        if need_weights:
            weights = probs.view(bsz, heads, tgt_len, k.size(1))
            if average_attn_weights:
                weights = weights.mean(dim=1)
        if not is_batched:
            out = out.squeeze(1)
            weights = weights.squeeze(0) if weights is not None else None
        return out, weights

    @staticmethod
    def _canonical_masks(query, attn_mask, key_padding_mask, is_causal, unfused):
        """Both masks in the query's dtype, and the causal hint as the fused kernel takes it."""
        key_padding_mask = F._canonical_mask(
            mask=key_padding_mask, mask_name="key_padding_mask",
            other_type=F._none_or_dtype(attn_mask), other_name="attn_mask",
            target_type=query.dtype)
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint (see "
                               "nn.Transformer.generate_square_subsequent_mask)")
        if is_causal and key_padding_mask is None and not unfused:
            attn_mask = None  # the fused kernel applies the causal mask itself
        else:
            attn_mask = F._canonical_mask(mask=attn_mask, mask_name="attn_mask", other_type=None,
                                          other_name="", target_type=query.dtype,
                                          check_other=False)
            if key_padding_mask is not None:
                is_causal = False
        return attn_mask, key_padding_mask, is_causal

    def _split_heads(self, q, k, v, attn_mask, key_padding_mask):
        """(L, N, E) projections to (N * heads, L, head_dim), with bias_k/v, zero attention and
        the key padding mask folded into ``attn_mask``."""
        bsz, heads = q.shape[1], self.num_heads
        head_dim = q.shape[2] // heads
        if self.bias_k is not None and self.bias_v is not None:
            k = torch.cat([k, self.quantized_param("bias_k").repeat(1, bsz, 1)])
            v = torch.cat([v, self.quantized_param("bias_v").repeat(1, bsz, 1)])
            attn_mask, key_padding_mask = self._pad_masks(attn_mask, key_padding_mask)
        q = q.view(q.shape[0], bsz * heads, head_dim).transpose(0, 1)
        k = k.view(k.shape[0], bsz * heads, head_dim).transpose(0, 1)
        v = v.view(v.shape[0], bsz * heads, head_dim).transpose(0, 1)
        if self.add_zero_attn:
            zeros = torch.zeros((bsz * heads, 1, head_dim), dtype=k.dtype, device=k.device)
            k, v = torch.cat([k, zeros], dim=1), torch.cat([v, zeros], dim=1)
            attn_mask, key_padding_mask = self._pad_masks(attn_mask, key_padding_mask)
        if key_padding_mask is not None:
            src_len = k.size(1)
            F._check_key_padding_mask(key_padding_mask, src_len, bsz)
            key_padding_mask = (key_padding_mask.view(bsz, 1, 1, src_len)
                                .expand(-1, heads, -1, -1).reshape(bsz * heads, 1, src_len))
            attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask
        return q, k, v, attn_mask

    def _unfused_context(self, q, k, v, attn_mask):
        """Scores and probabilities spelled out (quantizable, returned); context as (L, N, E)."""
        q_scaled = q * math.sqrt(1.0 / float(q.shape[-1]))
        scores = torch.bmm(q_scaled, k.transpose(-2, -1)) if attn_mask is None else \
            torch.baddbmm(attn_mask, q_scaled, k.transpose(-2, -1))
        probs = self._intermediate("probs",
                                   F.softmax(self._intermediate("scores", scores), dim=-1))
        dropout_p = self.dropout if self.training else 0.0
        if dropout_p > 0.0:
            probs = F.dropout(probs, p=dropout_p)
        return torch.bmm(probs, v).transpose(0, 1), probs

    def _fused_context(self, q, k, v, attn_mask, is_causal):
        """``F.scaled_dot_product_attention`` on the heads; context as (L, N, heads, head_dim)."""
        bsz_heads, tgt_len, head_dim = q.shape
        heads, src_len = self.num_heads, k.size(1)
        bsz = bsz_heads // heads
        if attn_mask is not None:
            attn_mask = attn_mask.unsqueeze(0) if attn_mask.size(0) == 1 and \
                attn_mask.dim() == 3 else attn_mask.view(bsz, heads, -1, src_len)
        dropout_p = self.dropout if self.training else 0.0
        context = F.scaled_dot_product_attention(
            q.view(bsz, heads, tgt_len, head_dim), k.view(bsz, heads, src_len, head_dim),
            v.view(bsz, heads, src_len, head_dim), attn_mask, dropout_p, is_causal)
        return context.permute(2, 0, 1, 3)

    @staticmethod
    def _pad_masks(attn_mask, key_padding_mask):
        """One more key position (bias_k / zero attention) in both masks."""
        return (None if attn_mask is None else F.pad(attn_mask, (0, 1)),
                None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1)))


def _check_attn_mask(attn_mask, shape_2d, bsz_heads):
    """A 2-D (L, S) mask as (1, L, S); a 3-D mask must be (N * heads, L, S)."""
    if attn_mask is None:
        return None
    if attn_mask.dim() == 2:
        if attn_mask.shape != shape_2d:
            raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, "
                               f"but should be {shape_2d}.")
        return attn_mask.unsqueeze(0)
    if attn_mask.dim() == 3:
        if attn_mask.shape != (bsz_heads, *shape_2d):
            raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, "
                               f"but should be {(bsz_heads, *shape_2d)}.")
        return attn_mask
    raise RuntimeError(f"attn_mask's dimension {attn_mask.dim()} is not supported")
