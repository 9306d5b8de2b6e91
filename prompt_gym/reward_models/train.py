"""Training a text reward model: MSE on standardised labels, a held-out split by source, metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prompt_gym.reward_models.data import rm_examples, split_by_source
from prompt_gym.reward_models.model import TINY, TextRewardModel


@dataclass(frozen=True)
class RMArgs:
    """Settings of :func:`train_reward_model` (``prompt-gym train-rm`` flags)."""

    target: str = "aesthetic"
    """``aesthetic`` (from ``y``) or ``pickscore`` (from ``"Input: x\\nOutput: y"``)."""
    base: str = TINY
    """``tiny`` or a local GPT-2-class model directory / cached hub id."""
    epochs: int = 30
    """Passes over the training examples."""
    batch_size: int = 32
    """Examples per step."""
    learning_rate: float = 1e-3
    """AdamW learning rate (1e-3 for ``tiny``; about 2e-5 for a pretrained GPT-2)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    holdout: float = 0.2
    """Share of the *source prompts* held out for the metrics."""
    seed: int = 0
    """Seed of the split, the initialisation and the batch order."""


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination ``1 - SSE / SST``.

    >>> r2_score(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    1.0
    """
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    sst = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / sst if sst > 0 else float("nan")


def spearman(y: np.ndarray, pred: np.ndarray) -> float:
    """Spearman rank correlation (ties averaged).

    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
    0.5
    """
    from scipy.stats import spearmanr

    return float(spearmanr(y, pred).statistic)


def fit(rm: TextRewardModel, texts: Sequence[str], labels: np.ndarray, args: RMArgs) -> list[float]:
    """Train ``rm`` in place on standardised ``labels`` (MSE); return the loss of each epoch."""
    import torch

    rm.mean, rm.std = float(np.mean(labels)), float(np.std(labels)) or 1.0
    z = torch.tensor((labels - rm.mean) / rm.std, dtype=torch.float32)
    opt = torch.optim.AdamW(
        rm.model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay
    )
    rng = np.random.default_rng(args.seed)
    rm.model.train()
    losses = []
    for _ in range(args.epochs):
        order, total = rng.permutation(len(texts)), 0.0
        for a in range(0, len(texts), args.batch_size):
            idx = order[a : a + args.batch_size]
            pred = rm.forward([texts[i] for i in idx])
            loss = torch.nn.functional.mse_loss(pred, z[idx].to(pred.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(texts))
    rm.model.eval()
    return losses


def evaluate(rm: TextRewardModel, texts: Sequence[str], labels: np.ndarray) -> dict[str, float]:
    """R^2, Spearman and RMSE of the model's predictions against the true scores."""
    pred = rm.predict(texts)
    return {
        "r2": r2_score(labels, pred),
        "spearman": spearman(labels, pred),
        "rmse": float(np.sqrt(np.mean((labels - pred) ** 2))),
        "n": float(len(labels)),
    }


def train_reward_model(
    rows: list[dict[str, Any]], args: RMArgs, out: str | Path | None = None
) -> tuple[TextRewardModel, dict[str, float]]:
    """Train a text reward model on a dataset's rows; report held-out metrics; save it to ``out``.

    Returns:
        The model and its metrics: ``heldout_r2``, ``heldout_spearman``, ``heldout_rmse``,
        ``train_r2``, ``train_examples``, ``heldout_examples``, ``final_loss``.
    """
    texts, labels, sources = rm_examples(rows, args.target)
    train_idx, test_idx = split_by_source(sources, args.holdout, args.seed)
    rm = TextRewardModel.build(args.base, args.target, args.seed)
    losses = fit(rm, [texts[i] for i in train_idx], labels[train_idx], args)
    held = evaluate(rm, [texts[i] for i in test_idx], labels[test_idx])
    train = evaluate(rm, [texts[i] for i in train_idx], labels[train_idx])
    metrics = {
        "heldout_r2": held["r2"],
        "heldout_spearman": held["spearman"],
        "heldout_rmse": held["rmse"],
        "train_r2": train["r2"],
        "train_examples": float(len(train_idx)),
        "heldout_examples": float(len(test_idx)),
        "final_loss": losses[-1],
    }
    rm.metrics = metrics
    if out is not None:
        rm.save(out)
    return rm, metrics
