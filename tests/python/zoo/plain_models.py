"""Plain-torch models of the zoo, written as users write them (no concession to tracing):
recurrent classifiers, nn.TransformerEncoder, nn.Transformer (encoder-decoder), a U-Net, shape branching, GroupNorm + attention,
EmbeddingBag. Each builder returns ``(model, dummy_input)``, the model in eval mode."""

import torch
import torch.nn.functional as F
from torch import nn


def _seeded(model: nn.Module) -> nn.Module:
    """`model` in eval mode with its vectors (biases, norm weights) moved off their initial
    zeros and ones, as after training: a range over all-equal values gets no gradient."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class RecurrentClassifier(nn.Module):
    def __init__(self, cell: type, **kwargs):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.rnn = cell(16, 24, num_layers=2, batch_first=True, **kwargs)
        width = 48 if kwargs.get("bidirectional") else 24
        self.head = nn.Linear(width, 3)

    def forward(self, tokens):
        out, state = self.rnn(self.embed(tokens))
        h, c = state if isinstance(state, tuple) else (state, 0.0)
        return self.head(out.mean(1) + torch.cat([h[-1], c[-1]], -1).mean(-1, keepdim=True)
                         if isinstance(state, tuple) else out.mean(1) + h[-1])


def _tokens():
    return torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(1))


def lstm():
    torch.manual_seed(0)
    return _seeded(RecurrentClassifier(nn.LSTM, bidirectional=True)), _tokens()


def gru():
    torch.manual_seed(0)
    return _seeded(RecurrentClassifier(nn.GRU)), _tokens()


def rnn():
    torch.manual_seed(0)
    return _seeded(RecurrentClassifier(nn.RNN, nonlinearity="tanh")), _tokens()


class TextTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 5)

    def forward(self, tokens, padding_mask=None):
        return self.head(self.encoder(self.embed(tokens), src_key_padding_mask=padding_mask)
                         .mean(1))


def transformer_encoder():
    torch.manual_seed(0)
    return _seeded(TextTransformer()), _tokens()


class Seq2SeqTransformer(nn.Module):
    """``nn.Transformer`` (TransformerEncoder/Decoder and their layers) with a causal mask on
    the target, as a translation model calls it."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.transformer = nn.Transformer(32, 4, 1, 1, 64, dropout=0.1, batch_first=True)
        self.head = nn.Linear(32, 50)

    def forward(self, src, tgt):
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
        return self.head(self.transformer(self.embed(src), self.embed(tgt), tgt_mask=mask))


def transformer_seq2seq():
    torch.manual_seed(0)
    return _seeded(Seq2SeqTransformer()), (_tokens(), _tokens()[:, :5])


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.down2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU())
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.fuse = nn.Conv2d(16, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        skip = self.down1(x)
        y = self.up(self.down2(skip))
        return self.out(F.relu(self.fuse(torch.cat([y, skip], dim=1))))


def unet():
    torch.manual_seed(0)
    return _seeded(UNet()), _x(1, 3, 16, 16)


class ShapeBranch(nn.Module):
    """Branches on the input width: wide inputs are pooled first."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        if x.shape[-1] > 16:
            x = F.avg_pool1d(x, 2)
        h = torch.tanh(self.conv(x))
        return self.fc(h.amax(dim=-1))


def shape_branch():
    torch.manual_seed(0)
    return _seeded(ShapeBranch()), _x(2, 4, 32)


class NormAttentionBlock(nn.Module):
    """GroupNorm + MultiheadAttention residual block (diffusion U-Net style)."""

    def __init__(self, channels=16):
        super().__init__()
        self.norm = nn.GroupNorm(4, channels)
        self.attn = nn.MultiheadAttention(channels, 4, batch_first=True)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        attended, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return x + self.proj(attended.transpose(1, 2).reshape(b, c, h, w))


def norm_attention():
    torch.manual_seed(0)
    return _seeded(NormAttentionBlock()), _x(1, 16, 4, 4)


class BagClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(100, 16, mode="mean")
        self.fc = nn.Linear(16, 4)

    def forward(self, ids, offsets):
        return self.fc(F.relu(self.bag(ids, offsets)))


def embedding_bag():
    torch.manual_seed(0)
    ids = torch.randint(0, 100, (12,), generator=torch.Generator().manual_seed(1))
    return _seeded(BagClassifier()), (ids, torch.tensor([0, 5]))


PLAIN = {f.__name__: f for f in (lstm, gru, rnn, transformer_encoder, transformer_seq2seq, unet,
                                shape_branch, norm_attention, embedding_bag)}
