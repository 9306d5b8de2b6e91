"""LM-PPO, the GPT-2 prompt rewriter of Promptist: one algorithm, its parts beside it.

* :mod:`~prompt_gym.agents.lm_ppo.ppo`: the algorithm, top to bottom (args, env, model, SFT,
  rollout, update, logging, train, eval); ``prompt-gym train --agent lm-ppo`` runs it;
* :mod:`~prompt_gym.agents.lm_ppo.losses`: the pure tensor pieces (KL-shaped rewards, GAE,
  clipped losses, KL controllers);
* :mod:`~prompt_gym.agents.lm_ppo.models`: the GPT-2 policy, value model and decoding in the
  token env's id space;
* :mod:`~prompt_gym.agents.lm_ppo.sft`: the SFT stage (prompt pairs, teacher forcing).

Token sequences become env episodes through :mod:`prompt_gym.agents.lm_rollout`.
"""
