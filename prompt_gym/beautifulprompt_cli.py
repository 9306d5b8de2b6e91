"""``prompt-gym export`` and ``prompt-gym train-rm``: BeautifulPrompt's data and reward models.

``export`` scores rewrites of a prompt split on shared seeds and writes every score as a
Parquet dataset (:mod:`prompt_gym.export`): modifier-bank rewrites (``--per-prompt``), or a
trained LM-PPO policy's rollouts with their rewards (``--checkpoint``, an offline-RL dataset).
``train-rm`` trains a text reward model on such a dataset (:mod:`prompt_gym.reward_models`)
and prints its held-out R^2 and Spearman.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_beautifulprompt_commands(sub: Any) -> None:
    """Add ``export`` and ``train-rm`` to the ``prompt-gym`` subparsers."""
    export = sub.add_parser("export", help="score rewrites and write them as a Parquet dataset")
    export.add_argument("--out", required=True, help="dataset directory (appended to)")
    export.add_argument("--backend", default="shapes", help="backend preset")
    export.add_argument("--split", default="train", help="prompt split (train, test, all)")
    export.add_argument("--per-prompt", type=int, default=6, help="modifier rewrites per prompt")
    export.add_argument("--seeds", type=int, default=4, help="image seeds per pair (0..N-1)")
    export.add_argument("--seed", type=int, default=0, help="seed of the rewrites drawn")
    export.add_argument("--no-pickscore", action="store_true", help="skip the preference score")
    export.add_argument("--checkpoint", help="an LM-PPO run: export its rollouts instead")
    export.add_argument("--episodes", type=int, default=256, help="rollouts of --checkpoint")
    export.set_defaults(fn=cmd_export)
    rm = sub.add_parser("train-rm", help="train a text reward model on an exported dataset")
    rm.add_argument("--data", required=True, help="dataset directory or Parquet file")
    rm.add_argument("--target", required=True, choices=["aesthetic", "pickscore"])
    rm.add_argument("--out", required=True, help="model directory to write")
    rm.add_argument("--base", default="tiny", help="tiny, or a local GPT-2-class model dir")
    rm.add_argument("--epochs", type=int, default=30)
    rm.add_argument("--learning-rate", type=float, default=1e-3)
    rm.add_argument("--batch-size", type=int, default=32)
    rm.add_argument("--holdout", type=float, default=0.2, help="share of source prompts held out")
    rm.add_argument("--seed", type=int, default=0)
    rm.set_defaults(fn=cmd_train_rm)


def cmd_export(args: argparse.Namespace) -> int:
    """Score rewrites (or a policy's rollouts) and append them to ``--out``."""
    from prompt_gym.backends import make_backend
    from prompt_gym.backends.preference import load_preference
    from prompt_gym.envs.prompt_sets import load_modifiers, load_prompts
    from prompt_gym.export import Recorder
    from prompt_gym.export.rewrites import export_rewrites, modifier_rewrites

    backend = make_backend(args.backend)
    preference = None if args.no_pickscore else load_preference(backend)
    rewards = None
    if args.checkpoint is not None:
        pairs, rewards = policy_rollouts(args.checkpoint, args.episodes, args.seed, args.split)
        policy = str(args.checkpoint)
    else:
        prompts = load_prompts(backend, args.split, None)
        pairs = modifier_rewrites(prompts, load_modifiers(backend), args.per_prompt, args.seed)
        policy = "modifiers"
    rows = export_rewrites(
        backend,
        pairs,
        list(range(args.seeds)),
        Recorder(args.out),
        preference=preference,
        policy=policy,
        rewards=rewards,
    )
    print(json.dumps({"out": str(Path(args.out)), "pairs": len(pairs), "rows": rows}))
    return 0


def policy_rollouts(
    checkpoint: str, episodes: int, seed: int, split: str
) -> tuple[list[tuple[str, str]], list[float]]:
    """``(x, y)`` pairs and rewards of sampled rollouts of an LM-PPO checkpoint."""
    from prompt_gym.agents.lm_ppo.ppo import env_kwargs, evaluate, load_model

    _, run_args = load_model(checkpoint)
    kwargs = {**env_kwargs(run_args), "split": split}
    eps = evaluate(run_args.env_id, episodes, seed, kwargs, checkpoint=checkpoint, greedy=False)
    pairs = [(e.info["source"], e.info["prompt"]) for e in eps]
    return pairs, [float(e.rewards.sum()) for e in eps]


def cmd_train_rm(args: argparse.Namespace) -> int:
    """Train a text reward model; print its metrics as JSON."""
    from prompt_gym.export import read_rows
    from prompt_gym.reward_models.train import RMArgs, train_reward_model

    rm_args = RMArgs(
        target=args.target,
        base=args.base,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        holdout=args.holdout,
        seed=args.seed,
    )
    _, metrics = train_reward_model(read_rows(args.data), rm_args, args.out)
    print(json.dumps({"out": args.out, "target": args.target, **metrics}))
    return 0
