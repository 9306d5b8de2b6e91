"""The pure tensor pieces of LM-PPO: KL-shaped rewards, GAE, clipped losses, KL controllers.

Every function works on right-padded ``(B, T)`` tensors of response tokens with a ``mask`` that is
1 on the tokens of each response and 0 on the padding, as in Ziegler et al. (2019) and trl's
classic ``PPOTrainer``. They are small and free of model code so the tests can check them on
hand-computed tensors.
"""

from __future__ import annotations

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1.

    >>> masked_mean(torch.tensor([1.0, 2.0, 9.0]), torch.tensor([1.0, 1.0, 0.0])).item()
    1.5
    """
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``x`` scaled to unit variance (and zero mean when ``shift_mean``) over the masked positions.

    Padding positions come back as 0.
    """
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask


def logprobs_of(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[token]`` at each position: ``(B, T, V), (B, T) -> (B, T)``."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens[..., None]).squeeze(-1)


def entropy_of(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position: ``(B, T, V) -> (B, T)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def kl_penalized_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards ``-kl_coef * (log pi - log pi_ref)``, the score added at the last token.

    Args:
        scores: ``(B,)`` the env's reward of each whole response.
        logprobs: ``(B, T)`` log-probabilities of the response tokens under the policy.
        ref_logprobs: ``(B, T)`` the same under the frozen reference (SFT) model.
        mask: ``(B, T)`` 1 on response tokens; every row must have at least one.
        kl_coef: The KL coefficient ``beta``.

    Returns:
        ``(rewards, kl)``: both ``(B, T)``, zero on the padding; ``kl = log pi - log pi_ref``.

    >>> r, kl = kl_penalized_rewards(
    ...     torch.tensor([1.0]), torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]]),
    ...     torch.tensor([[1.0, 1.0]]), 0.1)
    >>> [round(v, 4) for v in r[0].tolist()], kl[0].tolist()
    ([-0.05, 1.1], [0.5, -1.0])
    """
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores.to(rewards.dtype)
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over right-padded responses.

    The value after a response's last token is 0 (the episode ends there).

    Returns:
        ``(advantages, returns)`` with ``returns = advantages + values``, zero on the padding.

    >>> adv, ret = gae(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.2]]),
    ...                torch.tensor([[1.0, 1.0]]), gamma=1.0, lam=0.5)
    >>> [round(v, 4) for v in adv[0].tolist()], [round(v, 4) for v in ret[0].tolist()]
    ([0.1, 0.8], [0.6, 1.0])
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate ``mean max(-A r, -A clip(r, 1 - eps, 1 + eps))``.

    Returns:
        ``(loss, approx_kl, clip_fraction)``; ``approx_kl`` is the low-variance estimator
        ``mean((r - 1) - log r)`` of ``KL(old || new)`` (Schulman's k3), ``clip_fraction`` the share
        of tokens whose ratio was clipped.

    >>> loss, kl, frac = clipped_policy_loss(
    ...     torch.tensor([[0.0, 0.0]]), torch.tensor([[-1.0, 0.0]]), torch.tensor([[1.0, -2.0]]),
    ...     torch.tensor([[1.0, 1.0]]), 0.2)
    >>> round(loss.item(), 4), round(frac.item(), 2)
    (0.4, 0.5)
    """
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)
    clip_fraction = masked_mean((torch.abs(ratio - 1.0) > clip_range).float(), mask)
    return loss, approx_kl, clip_fraction


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> torch.Tensor:
    """``0.5 * mean max((v - R)^2, (clip(v, v_old - eps, v_old + eps) - R)^2)``.

    >>> clipped_value_loss(torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[2.0]]),
    ...                    torch.tensor([[1.0]]), 0.5).item()
    1.125
    """
    clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    worst = torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    return 0.5 * masked_mean(worst, mask)


class AdaptiveKLController:
    """Ziegler et al.'s adaptive KL coefficient (trl's ``AdaptiveKLController``).

    After each batch, ``beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon``, so the
    coefficient grows while the measured KL is above the target and shrinks below it.

    Args:
        init: Initial coefficient.
        target: Target KL per response (nats).
        horizon: Number of responses over which the error is corrected.

    >>> ctl = AdaptiveKLController(0.2, target=6.0, horizon=100)
    >>> ctl.update(12.0, n_steps=10); round(ctl.value, 4)
    0.204
    >>> ctl.update(0.0, n_steps=10); round(ctl.value, 6)
    0.19992
    """

    def __init__(self, init: float, target: float, horizon: float) -> None:
        if init < 0 or target <= 0 or horizon <= 0:
            raise ValueError("the KL coefficient must be >= 0, target and horizon > 0")
        self.value, self.target, self.horizon = float(init), float(target), float(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Move the coefficient after a batch of ``n_steps`` responses with mean KL ``current_kl``."""
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon

    def state_dict(self) -> dict[str, float]:
        """For checkpoints."""
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore :meth:`state_dict`."""
        self.value = float(state["value"])


class FixedKLController(AdaptiveKLController):
    """A constant coefficient (Promptist keeps 0.2)."""

    def __init__(self, init: float) -> None:
        super().__init__(init, 1.0, 1.0)

    def update(self, current_kl: float, n_steps: int) -> None:
        """No change."""
