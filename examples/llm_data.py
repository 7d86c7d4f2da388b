"""Text, tokenizer, model and metrics of examples/llm.py: a Llama-architecture model trained here
on the Python standard library's own sources (nothing is downloaded).

Example::

    >>> train, held_out = stdlib_text(files=4)
    >>> len(train) > len(held_out) > 0
    True
"""

import glob
import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["stdlib_text", "train_tokenizer", "windows", "tiny_llama", "train", "perplexity"]


def stdlib_text(files: int, held_out_fraction: float = 0.1) -> tuple:
    """``(train text, held-out text)`` from the first ``files`` standard-library modules (sorted
    by name); the last ``held_out_fraction`` of the files are held out."""
    paths = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))[:files]
    texts = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            texts.append(f.read())
    cut = max(1, int(len(texts) * (1 - held_out_fraction)))
    return "\n".join(texts[:cut]), "\n".join(texts[cut:])


def train_tokenizer(text: str, vocab_size: int):
    """A byte-level BPE tokenizer (``tokenizers``) trained on ``text``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([text], trainer)
    return tokenizer


def windows(tokenizer, text: str, length: int) -> Tensor:
    """``text`` tokenized and cut into rows of ``length`` tokens (the tail is dropped)."""
    ids = torch.tensor(tokenizer.encode(text).ids, dtype=torch.long)
    rows = ids.numel() // length
    return ids[:rows * length].view(rows, length)


def tiny_llama(vocab_size: int, hidden: int, layers: int, seed: int = 0) -> nn.Module:
    """A randomly initialised ``LlamaForCausalLM`` (eager attention, untied head, no KV cache:
    perplexity needs none)."""
    import transformers
    config = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=hidden,
                                      num_hidden_layers=layers, num_attention_heads=4,
                                      num_key_value_heads=2, intermediate_size=hidden * 2,
                                      max_position_embeddings=512, tie_word_embeddings=False,
                                      use_cache=False)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(config)


def _loss(model: nn.Module, batch: Tensor) -> Tensor:
    logits = model(input_ids=batch).logits
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                           batch[:, 1:].reshape(-1))


def train(model: nn.Module, data: Tensor, steps: int, batch_size: int, lr: float,
          seed: int = 0) -> float:
    """``steps`` AdamW steps (cosine decay) of next-token prediction on random rows of
    ``data``; returns the last loss. Works on a model and on ``sim.model`` alike (QAT)."""
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(steps, 1))))
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        rows = torch.randint(0, data.shape[0], (batch_size,), generator=generator)
        loss = _loss(model, data[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    return float(loss)


@torch.no_grad()
def perplexity(model: nn.Module, data: Tensor, batch_size: int) -> float:
    """exp(mean next-token cross entropy) over every row of ``data``."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, data.shape[0], batch_size):
        batch = data[start:start + batch_size]
        total += float(_loss(model, batch)) * batch.shape[0]
        count += batch.shape[0]
    return math.exp(total / count)
