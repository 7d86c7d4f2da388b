"""The model zoo of the capture tests: tiny random-init models built in code, used as they are
(no wrapper module, no extra inputs). Each builder returns ``(model, dummy_input)`` with the
model in eval mode and seeded weights; HuggingFace models are built from configs (no download).
"""

import os

import torch
import torch.nn.functional as F
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_TEXT = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, max_position_embeddings=64)
_DECODER = dict(_TEXT, num_key_value_heads=2, head_dim=8)


def _ids(batch=2, length=8, vocab=64):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(1))


def _image(channels=3, size=32, batch=2):
    return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(2))


def _hf(config_name: str, model_name: str, **config):
    import transformers
    cfg = getattr(transformers, config_name)(**config)
    cfg._attn_implementation = config.get("attn_implementation", "eager")
    torch.manual_seed(0)
    return trained_norms(getattr(transformers, model_name)(cfg).eval())


def bert():
    return _hf("BertConfig", "BertModel", **_TEXT), {"input_ids": _ids()}


def distilbert():
    return _hf("DistilBertConfig", "DistilBertModel", vocab_size=64, dim=32, n_layers=2,
               n_heads=4, hidden_dim=64, max_position_embeddings=64), {"input_ids": _ids()}


def roberta():
    return _hf("RobertaConfig", "RobertaModel", **_TEXT), {"input_ids": _ids(vocab=60) + 2}


def gpt2():
    return _hf("GPT2Config", "GPT2LMHeadModel", vocab_size=64, n_embd=32, n_layer=2, n_head=4,
               n_positions=64), {"input_ids": _ids()}


def llama():
    return _hf("LlamaConfig", "LlamaForCausalLM", **_DECODER), {"input_ids": _ids()}


def qwen2():
    return _hf("Qwen2Config", "Qwen2ForCausalLM", **_DECODER), {"input_ids": _ids()}


def mistral(**config):
    """`config`: settings over the zoo's (``sliding_window=6``, ...)."""
    return _hf("MistralConfig", "MistralForCausalLM", **dict(_DECODER, **config)), \
        {"input_ids": _ids()}


def gemma():
    return _hf("GemmaConfig", "GemmaForCausalLM", **_DECODER), {"input_ids": _ids()}


def phi3():
    return _hf("Phi3Config", "Phi3ForCausalLM", **dict(_DECODER, pad_token_id=0)), \
        {"input_ids": _ids()}


def t5():
    return _hf("T5Config", "T5ForConditionalGeneration", vocab_size=64, d_model=32, d_kv=8,
               d_ff=64, num_layers=2, num_heads=4, decoder_start_token_id=0), \
        {"input_ids": _ids(), "decoder_input_ids": _ids(length=4)}


_VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=64, image_size=32, patch_size=8, num_channels=3)


def vit():
    return _hf("ViTConfig", "ViTModel", **_VISION), {"pixel_values": _image()}


def swin():
    return _hf("SwinConfig", "SwinModel", image_size=32, patch_size=4, embed_dim=16,
               depths=[1, 1], num_heads=[2, 2], window_size=4), {"pixel_values": _image()}


def convnext():
    return _hf("ConvNextConfig", "ConvNextModel", hidden_sizes=[8, 16], depths=[1, 1],
               num_stages=2), {"pixel_values": _image()}


def resnet():
    return _hf("ResNetConfig", "ResNetModel", embedding_size=8, hidden_sizes=[8, 16],
               depths=[1, 1], layer_type="basic"), {"pixel_values": _image()}


def trained_norms(model: nn.Module) -> nn.Module:
    """Norm weights spread around 1 and BatchNorm running statistics spread, as after training
    (HF's initialisation of some CNNs makes every activation vanish, unit weights sit exactly on
    a grid point, where a range gets no gradient, and timm's zero-initialised last norm of a
    branch (ResNet, MobileViT, LeViT) makes it a constant, through which no gradient flows)."""
    g = torch.Generator().manual_seed(5)
    for m in model.modules():
        weight = getattr(m, "weight", None)
        if "Norm" in type(m).__name__ and isinstance(weight, nn.Parameter) and weight.dim() == 1:
            weight.data.copy_(1 + 0.1 * torch.randn(weight.shape, generator=g))
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def mobilenetv2():
    return _hf("MobileNetV2Config", "MobileNetV2Model", image_size=32, depth_multiplier=0.25), \
        {"pixel_values": _image()}


def whisper(model_name="WhisperModel"):
    """`model_name`: ``WhisperForConditionalGeneration`` for a model that can generate."""
    return _hf("WhisperConfig", model_name, vocab_size=64, d_model=32, encoder_layers=1,
               decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
               encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=8, max_source_positions=16,
               max_target_positions=16, pad_token_id=0, decoder_start_token_id=1), \
        {"input_features": torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(3)),
         "decoder_input_ids": _ids(batch=1, length=4)}


def clip_text():
    return _hf("CLIPTextConfig", "CLIPTextModel", vocab_size=64, hidden_size=32,
               num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               max_position_embeddings=16), {"input_ids": _ids()}


def clip_vision():
    return _hf("CLIPVisionConfig", "CLIPVisionModel", **_VISION), {"pixel_values": _image()}


def wav2vec2():
    return _hf("Wav2Vec2Config", "Wav2Vec2Model", hidden_size=32, num_hidden_layers=1,
               num_attention_heads=4, intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 2),
               conv_kernel=(10, 3), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4,
               do_stable_layer_norm=False), \
        {"input_values": torch.randn(1, 400, generator=torch.Generator().manual_seed(4))}


HF = {f.__name__: f for f in (bert, distilbert, roberta, gpt2, llama, qwen2, mistral, gemma, phi3,
                             t5, vit, swin, convnext, resnet, mobilenetv2, whisper, clip_text,
                             clip_vision, wav2vec2)}
