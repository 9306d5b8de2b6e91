"""RL agents and baselines for prompt-gym, installed as ``prompt_gym.agents`` (``agents`` extra).

One file per algorithm, each reading top to bottom (args, env, model, rollout, update, logging),
e.g. :mod:`prompt_gym.agents.reinforce` (the ImagePrompt REINFORCE policy, per target or across
targets) and :mod:`prompt_gym.agents.sb3_ppo` (Stable-Baselines3 PPO and sb3-contrib
MaskablePPO). Shared plumbing (run directories, TensorBoard, checkpoints, seeding, progress,
evaluation, the masked-uniform random baseline) lives in :mod:`prompt_gym.agents.common`. The
``prompt-gym train`` / ``eval`` commands and the list of agents are in
:mod:`prompt_gym.agents_registry`.
"""
