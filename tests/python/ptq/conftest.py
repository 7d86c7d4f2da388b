"""Shared fixtures of the PTQ tests: a small classifier trained on a synthetic task."""

import pytest
import torch
from torch import nn

from ptq_task import task


@pytest.fixture(autouse=True)
def one_thread():
    """The PTQ tests run many tiny ops, which two threads only slow down (and on a shared
    machine much more so); restore the thread count afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def trained_mlp():
    """``(model, (x_train, y_train), (x_test, y_test))``: a 16-64-64-5 ReLU MLP trained to about
    80% test accuracy (eval mode)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 5))
    train, test = task(4096, 1), task(1024, 2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(800):
        idx = torch.randint(0, 4096, (128,))
        loss = nn.functional.cross_entropy(model(train[0][idx]), train[1][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(n)
    return model.eval(), train, test
