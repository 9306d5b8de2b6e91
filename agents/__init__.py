"""RL agents and baselines for prompt-gym, installed as ``prompt_gym.agents`` (``agents`` extra).

Every agent follows :mod:`~prompt_gym.agents.protocol` (one ``evaluate`` signature; trainable
agents add ``Args``, ``env_kwargs``, ``reset_options``, ``train`` and ``load_policy``), and each
algorithm reads top to bottom (args, env, model, rollout, update, logging):

* :mod:`~prompt_gym.agents.reinforce`: REINFORCE, the ImagePrompt policy (per target or across);
* :mod:`~prompt_gym.agents.sb3_ppo`: Stable-Baselines3 PPO and sb3-contrib MaskablePPO;
* :mod:`~prompt_gym.agents.lm_ppo`: the GPT-2 prompt rewriter (SFT, then PPO with a KL penalty),
  a subpackage: the algorithm in ``lm_ppo/ppo.py``, its losses, models and SFT stage beside it;
  :mod:`~prompt_gym.agents.lm_rollout` turns token sequences into env episodes for it;
* baselines: :mod:`~prompt_gym.agents.random_agent`, :mod:`~prompt_gym.agents.greedy`,
  :mod:`~prompt_gym.agents.pez`.

The shared plumbing is imported, one concern per module:
:mod:`~prompt_gym.agents.runs` (run directories, ``Args`` from config and flags, seeding and RNG
states, the end of a run), :mod:`~prompt_gym.agents.checkpoints` (safe weights-only
checkpoints), :mod:`~prompt_gym.agents.tb` (TensorBoard, namespaced scalars, the curve PNG) and
:mod:`~prompt_gym.agents.episodes` (lockstep episodes, evaluation, summaries). The
``prompt-gym train`` / ``eval`` commands and the list of agents are in
:mod:`prompt_gym.agents_registry`.
"""
