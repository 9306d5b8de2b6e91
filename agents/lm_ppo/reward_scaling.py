"""Reward scaling and clipping of LM-PPO's scores, as trlx does them (BeautifulPrompt's trainer).

``reward_scaling="running"``: each batch's scores are divided by the running standard deviation
of every score seen so far (trlx ``scale_reward="running"``, its ``RunningMoments``: batch
moments merged with Chan et al.'s parallel update, the batch itself included);
``reward_clip=c`` then clips the scores to ``[-c, c]`` (trlx ``cliprange_reward``, 10 in
BeautifulPrompt). The episodes keep the env's raw rewards (``charts/episodic_return``); only the
score PPO optimises is shaped.
"""

from __future__ import annotations

import torch

SCALINGS = ("none", "running")


class RunningMoments:
    """Running mean and standard deviation of a stream of batches (trlx's ``RunningMoments``).

    >>> m = RunningMoments(); _ = m.update(torch.tensor([1.0, 3.0])); round(m.std, 4)
    1.4142
    >>> _ = m.update(torch.tensor([5.0, 7.0])); round(m.mean, 4), round(m.std, 4)
    (4.0, 2.582)
    """

    def __init__(self) -> None:
        self.mean, self.var, self.std, self.count = 0.0, 1.0, 1.0, 1e-24

    def update(self, xs: torch.Tensor) -> tuple[float, float]:
        """Merge a batch; return the batch's mean and (unbiased) standard deviation."""
        xs = xs.detach().double()
        n = xs.numel()
        batch_mean = float(xs.mean())
        batch_var = float(xs.var(unbiased=False)) if n > 1 else 0.0
        delta, total = batch_mean - self.mean, self.count + n
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.var = m2 / total
        self.std = (self.var * total / max(total - 1, 1e-24)) ** 0.5
        self.count = total
        return batch_mean, (batch_var * n / max(n - 1, 1)) ** 0.5

    def state_dict(self) -> dict[str, float]:
        """For checkpoints (plain floats)."""
        return {"mean": self.mean, "var": self.var, "std": self.std, "count": self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore :meth:`state_dict`."""
        self.mean, self.var = float(state["mean"]), float(state["var"])
        self.std, self.count = float(state["std"]), float(state["count"])


def shape_scores(
    scores: torch.Tensor, moments: RunningMoments, scaling: str, clip: float | None
) -> torch.Tensor:
    """Scores as PPO sees them: updated into ``moments``, scaled, then clipped.

    >>> m = RunningMoments()
    >>> shape_scores(torch.tensor([0.0, 40.0]), m, "running", 10.0).tolist()
    [0.0, 1.4142135381698608]
    >>> shape_scores(torch.tensor([-50.0, 50.0]), RunningMoments(), "none", 10.0).tolist()
    [-10.0, 10.0]
    """
    if scaling not in SCALINGS:
        raise ValueError(f"reward_scaling must be one of {SCALINGS}, got {scaling!r}")
    moments.update(scores)
    if scaling == "running":
        scores = scores / moments.std
    if clip is not None:
        scores = torch.clamp(scores, -clip, clip)
    return scores
