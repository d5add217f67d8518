"""PyTorch anomaly models (Adler et al., JMIR mHealth 2020) and their training loop.

Training-only: this module imports torch (the optional ``train`` extra); the
runtime scores the exported ONNX file with onnxruntime (operators/scoring/reconstruction.py).

- :class:`DenseAutoencoder` — the seed's fully connected autoencoder, 2 encoder
  + 2 decoder layers: in → hidden → bottleneck → hidden → in, ReLU between
  layers, linear bottleneck and output (standardised inputs are unbounded).
- :class:`GruSeq2Seq` — the seed's GRU sequence-to-sequence variant over 24-h
  subsequences of hourly features: a GRU encoder summarises the sequence in its
  last hidden state, which is repeated at every step as the input of a GRU
  decoder whose outputs are mapped back to the features.

:func:`fit` trains by Adam on the mean squared reconstruction error with early
stopping on held-out healthy data, reproducibly for a seed (single thread,
deterministic algorithms, seeded shuffles).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = ["DenseAutoencoder", "GruSeq2Seq", "deterministic", "FitResult", "fit"]


class DenseAutoencoder(nn.Module):
    """in → hidden → bottleneck → hidden → in (2 encoder + 2 decoder linear layers)."""

    def __init__(self, n_features: int, hidden: int = 40, bottleneck: int | None = None) -> None:
        super().__init__()
        b = bottleneck or max(2, hidden // 4)
        self.n_features, self.hidden, self.bottleneck = n_features, hidden, b
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, b))
        self.decoder = nn.Sequential(nn.Linear(b, hidden), nn.ReLU(), nn.Linear(hidden, n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x`` (B, p) through the bottleneck."""
        return self.decoder(self.encoder(x))


class GruSeq2Seq(nn.Module):
    """GRU encoder → last hidden state repeated per step → GRU decoder → linear, (B, T, p)."""

    def __init__(self, n_features: int, hidden: int = 40) -> None:
        super().__init__()
        self.n_features, self.hidden = n_features, hidden
        self.encoder = nn.GRU(n_features, hidden, batch_first=True)
        self.decoder = nn.GRU(hidden, hidden, batch_first=True)
        self.output = nn.Linear(hidden, n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct the sequences ``x`` (B, T, p) from the encoder's last hidden state."""
        _, h = self.encoder(x)
        context = h[-1].unsqueeze(1).expand(-1, x.shape[1], -1)
        y, _ = self.decoder(context)
        return self.output(y)


@contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch, force deterministic kernels and one thread; restore settings after."""
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)


@dataclass
class FitResult:
    """Outcome of :func:`fit`: epochs run, the best epoch and its losses (MSE, standardised units)."""

    epochs: int
    best_epoch: int
    best_val_loss: float
    train_loss: float
    history: list[tuple[float, float]] = field(default_factory=list)  # (train, val) per epoch


def _mean_loss(model: nn.Module, X: torch.Tensor, batch: int = 4096) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, X.shape[0], batch):
            xb = X[i : i + batch]
            total += float(((model(xb) - xb) ** 2).sum())
    return total / X.numel()


def fit(
    model: nn.Module,
    X_train: np.ndarray,
    X_val: np.ndarray,
    *,
    seed: int = 0,
    max_epochs: int = 200,
    patience: int = 15,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    min_delta: float = 1e-3,
) -> FitResult:
    """Train ``model`` to reconstruct ``X_train``; stop when the held-out loss stalls.

    Early stopping: after ``patience`` epochs without the validation MSE improving
    by more than ``min_delta`` (relative), training stops and the weights of the
    best validation epoch are restored. Without validation rows the training loss
    is monitored instead.
    """
    with deterministic(seed):
        gen = torch.Generator().manual_seed(seed)
        Xt = torch.from_numpy(np.ascontiguousarray(X_train, dtype=np.float32))
        Xv = torch.from_numpy(np.ascontiguousarray(X_val, dtype=np.float32))
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        best = math.inf
        best_state = copy.deepcopy(model.state_dict())
        best_epoch, since, history = 0, 0, []
        epoch = 0
        for epoch in range(1, max_epochs + 1):
            model.train()
            order = torch.randperm(Xt.shape[0], generator=gen)
            for i in range(0, Xt.shape[0], batch_size):
                xb = Xt[order[i : i + batch_size]]
                opt.zero_grad(set_to_none=True)
                loss = ((model(xb) - xb) ** 2).mean()
                loss.backward()
                opt.step()
            tr = _mean_loss(model, Xt)
            va = _mean_loss(model, Xv) if Xv.shape[0] else tr
            history.append((tr, va))
            if va < best * (1.0 - min_delta):
                best, best_epoch, since = va, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since += 1
                if since >= patience:
                    break
        model.load_state_dict(best_state)
        model.eval()
        return FitResult(
            epochs=epoch,
            best_epoch=best_epoch,
            best_val_loss=best,
            train_loss=history[best_epoch - 1][0] if best_epoch else math.nan,
            history=history,
        )
