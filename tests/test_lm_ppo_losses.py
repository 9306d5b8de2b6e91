"""LM-PPO's tensor pieces on hand-computed examples."""

from __future__ import annotations

import math

import pytest
import torch
from prompt_gym.agents.lm_ppo import losses

MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def test_kl_penalized_rewards_put_the_score_on_each_rows_last_token():
    logp = torch.tensor([[-1.0, -1.0, -2.0], [-0.5, -3.0, -9.0]])
    ref = torch.tensor([[-1.5, -1.0, -1.0], [-1.0, -1.0, -1.0]])
    rewards, kl = losses.kl_penalized_rewards(
        torch.tensor([2.0, -1.0]), logp, ref, MASK, kl_coef=0.5
    )
    assert kl.tolist() == [[0.5, 0.0, -1.0], [0.5, -2.0, 0.0]]  # padding gives 0, not -8
    # -0.5 * kl, score added at index 2 (row 0) and index 1 (row 1, whose index 2 is padding)
    assert rewards.tolist() == [[-0.25, 0.0, 2.5], [-0.25, 0.0, 0.0]]


def test_gae_matches_the_recursion_and_stops_at_the_padding():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, 2.0, 7.0]])
    values = torch.tensor([[0.2, 0.4, 0.6], [1.0, 0.5, 9.0]])
    adv, ret = losses.gae(rewards, values, MASK, gamma=0.9, lam=0.8)
    # row 0: d2 = 1 - 0.6 = 0.4; d1 = 0 + 0.9*0.6 - 0.4 = 0.14; d0 = 0 + 0.9*0.4 - 0.2 = 0.16
    a2 = 0.4
    a1 = 0.14 + 0.9 * 0.8 * a2
    a0 = 0.16 + 0.9 * 0.8 * a1
    # row 1 ends at index 1: its next value is 0, and index 2 (padding, reward 7, value 9) is ignored
    b1 = 2.0 - 0.5
    b0 = 0.5 + 0.9 * 0.5 - 1.0 + 0.9 * 0.8 * b1
    expected = torch.tensor([[a0, a1, a2], [b0, b1, 0.0]])
    assert torch.allclose(adv, expected)
    assert torch.allclose(ret, (expected + values) * MASK)


def test_gae_with_lambda_one_and_gamma_one_gives_return_minus_value():
    rewards = torch.tensor([[0.1, -0.2, 3.0]])
    values = torch.tensor([[1.0, 2.0, 0.5]])
    adv, ret = losses.gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    assert torch.allclose(ret, torch.tensor([[2.9, 2.8, 3.0]]))
    assert torch.allclose(adv, ret - values)


def test_clipped_policy_loss_by_hand():
    old = torch.tensor([[0.0, 0.0, 0.0]])
    new = torch.tensor([[math.log(1.5), math.log(0.5), math.log(1.1)]])
    adv = torch.tensor([[1.0, 1.0, -2.0]])
    loss, approx_kl, frac = losses.clipped_policy_loss(
        new, old, adv, torch.ones(1, 3), clip_range=0.2
    )
    # token 0: max(-1.5, -1.2) = -1.2; token 1: max(-0.5, -0.8) = -0.5; token 2: max(2.2, 2.2)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 2.2) / 3)
    assert frac.item() == pytest.approx(2 / 3)
    k3 = [(r - 1) - math.log(r) for r in (1.5, 0.5, 1.1)]
    assert approx_kl.item() == pytest.approx(sum(k3) / 3)


def test_clipped_policy_loss_is_the_plain_surrogate_inside_the_clip_and_ignores_padding():
    old = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])
    new = old.clone()
    adv = torch.tensor([[1.0, -1.0, 2.0], [3.0, 1.0, 100.0]])
    loss, approx_kl, frac = losses.clipped_policy_loss(new, old, adv, MASK, 0.2)
    assert loss.item() == pytest.approx(-(1 - 1 + 2 + 3 + 1) / 5)
    assert approx_kl.item() == 0.0 and frac.item() == 0.0


def test_clipped_value_loss_by_hand():
    values = torch.tensor([[1.0, -3.0]])
    old = torch.tensor([[0.0, 0.0]])
    returns = torch.tensor([[2.0, 0.5]])
    loss = losses.clipped_value_loss(values, old, returns, torch.ones(1, 2), clip_range=0.5)
    # token 0: max((1-2)^2, (0.5-2)^2) = 2.25; token 1: max((-3-0.5)^2, (-0.5-0.5)^2) = 12.25
    assert loss.item() == pytest.approx(0.5 * (2.25 + 12.25) / 2)


def test_adaptive_kl_controller_follows_the_target():
    ctl = losses.AdaptiveKLController(0.2, target=4.0, horizon=1000)
    ctl.update(5.0, n_steps=100)  # error 0.25, clipped to 0.2
    assert ctl.value == pytest.approx(0.2 * (1 + 0.2 * 0.1))
    before = ctl.value
    ctl.update(3.0, n_steps=100)  # error -0.25 -> -0.2
    assert ctl.value == pytest.approx(before * (1 - 0.02))
    ctl.update(4.0, n_steps=100)
    assert ctl.value == pytest.approx(before * 0.98)
    fixed = losses.FixedKLController(0.2)
    fixed.update(100.0, n_steps=100)
    assert fixed.value == 0.2
    with pytest.raises(ValueError):
        losses.AdaptiveKLController(0.2, target=0.0, horizon=1.0)


def test_masked_whiten_and_entropy():
    x = torch.tensor([[1.0, 3.0, 100.0]])
    m = torch.tensor([[1.0, 1.0, 0.0]])
    w = losses.masked_whiten(x, m)
    assert torch.allclose(w, torch.tensor([[-1.0, 1.0, 0.0]]), atol=1e-4)
    uniform = torch.zeros(1, 1, 4)
    assert losses.entropy_of(uniform).item() == pytest.approx(math.log(4))
    logits = torch.tensor([[[0.0, math.log(3.0)]]])
    assert losses.logprobs_of(logits, torch.tensor([[1]])).item() == pytest.approx(math.log(0.75))
