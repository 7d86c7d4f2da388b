"""The digits task of the quickstart: data, a small CNN, and training / evaluation loops.

scikit-learn ships the UCI handwritten digits (1,797 grey 8x8 images of 0-9) inside its wheel,
so nothing is downloaded. The split is fixed (stratified, 20 % test) and every function is
deterministic for a given seed.

Example::

    >>> data = load_digits_data()
    >>> tuple(data.x_train.shape), tuple(data.x_test.shape)
    ((1437, 1, 8, 8), (360, 1, 8, 8))
    >>> model = DigitsCNN()
    >>> model(data.x_test[:2]).shape
    torch.Size([2, 10])
"""

import random
from typing import Iterator, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["DigitsData", "DigitsCNN", "accuracy", "batches", "load_digits_data", "predict",
           "seed_everything", "train"]


class DigitsData(NamedTuple):
    """Train and test splits: images ``(N, 1, 8, 8)`` float32 in [0, 1], labels ``(N,)`` int64."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (the examples' runs are then repeatable).

    Example::

        >>> seed_everything(0); a = torch.rand(1); seed_everything(0)
        >>> torch.equal(a, torch.rand(1))
        True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_digits_data(test_fraction: float = 0.2, seed: int = 0) -> DigitsData:
    """scikit-learn's bundled digits, scaled to [0, 1], split stratified by class.

    Args:
        test_fraction: share of the 1,797 images held out for testing.
        seed: the split's random state.

    Example::

        >>> d = load_digits_data()
        >>> float(d.x_train.max()), int(d.y_test.max())
        (1.0, 9)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(labels, dtype=torch.int64)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=test_fraction,
                                           random_state=seed, stratify=labels)
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return DigitsData(x[train_idx], y[train_idx], x[test_idx], y[test_idx])


class DigitsCNN(nn.Module):
    """Three conv blocks (Conv-BN-ReLU) and a linear classifier: 8x8x1 -> 10 logits (15.5k
    parameters).

    Example::

        >>> sum(p.numel() for p in DigitsCNN().parameters())
        15498
    """

    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, padding=1), nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),                                              # 8x8 -> 4x4
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),                                      # 4x4 -> 2x2
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(width * 4, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def batches(x: Tensor, y: Tensor, batch_size: int, generator: torch.Generator | None = None
            ) -> Iterator[tuple[Tensor, Tensor]]:
    """``(inputs, labels)`` mini-batches; shuffled with `generator` when given.

    Example::

        >>> [len(b[0]) for b in batches(torch.zeros(5, 1), torch.zeros(5), 2)]
        [2, 2, 1]
    """
    order = torch.randperm(len(x), generator=generator) if generator is not None else \
        torch.arange(len(x))
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]


def train(model: nn.Module, x: Tensor, y: Tensor, epochs: int, lr: float = 3e-3,
          batch_size: int = 64, seed: int = 0, desc: str = "train") -> None:
    """Trains `model` with Adam and cross-entropy (cosine learning-rate decay), in place.

    Args:
        model: any classifier (a float model, or a sim's ``sim.model`` for QAT).
        x, y: training images and labels.
        epochs: passes over the data.
        lr: peak learning rate.
        batch_size: mini-batch size.
        seed: seed of the shuffling generator.
        desc: the progress bar's label.

    Example::

        >>> m = DigitsCNN(); d = load_digits_data()
        >>> train(m, d.x_train[:64], d.y_train[:64], epochs=1, desc="doctest")
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    with tqdm(total=steps, desc=desc, unit="step", leave=False, disable=None) as bar:
        for _ in range(epochs):
            for xb, yb in batches(x, y, batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                bar.update(1)
    model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 512) -> Tensor:
    """Predicted classes of `model` (in eval mode; its mode is restored).

    Example::

        >>> predict(DigitsCNN(), torch.zeros(3, 1, 8, 8)).shape
        torch.Size([3])
    """
    training = model.training
    model.eval()
    try:
        return torch.cat([model(xb).argmax(dim=1) for xb, _ in batches(x, x, batch_size)])
    finally:
        model.train(training)


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Top-1 accuracy of `model` on ``(x, y)``, in percent.

    Example::

        >>> d = load_digits_data()
        >>> 0.0 <= accuracy(DigitsCNN(), d.x_test, d.y_test) <= 100.0
        True
    """
    return 100.0 * (predict(model, x) == y).double().mean().item()
