"""SFT -> RL gain of LM-PPO on the shapes rewrite task (``PromptRewriteTokens-Shapes-v0``).

Mean ``promptist-v1`` reward on the **test split**, every method on the same episodes (the same
user prompts and image seeds ``10000 + i``), as in Promptist's Table 1 / Appendix D:

* **plain**: the user prompt, unchanged (``y = x``);
* **tags**: the heuristic baseline of Promptist's Appendix D: the most frequent modifiers of the
  SFT targets (our stand-in for human-engineered prompts) randomly combined into six fixed groups
  of three, appended to every prompt. "best of 6" is the group with the best mean reward on
  **train-split** episodes (the same number of episodes, seeds ``i``), reported on the test
  episodes, so the choice does not see the prompts it is scored on; "mean of 6" is the mean of
  the six groups on the test episodes. Also the six tag groups of the paper verbatim (mostly
  words the shapes world ignores), chosen the same way;
* **greedy**: the greedy modifier search (it queries the reward at test time, so it is an oracle
  of sorts, not a policy);
* **SFT**: the SFT policy, greedy decoding;
* **SFT+PPO**: the LM-PPO policy, greedy decoding.

Each training seed runs the whole pipeline (pair generation, SFT, PPO); the table shows the mean
over seeds (and the spread of the gain). Outputs: ``<--out>/lm_ppo_rewrite.{json,md}`` (default
``benchmarks/out/``, git-ignored).

Usage::

    python benchmarks/lm_ppo_rewrite.py                        # 1 seed, 80k PPO steps (~2 min)
    python benchmarks/lm_ppo_rewrite.py --seeds 3 --total-timesteps 120000
    python benchmarks/lm_ppo_rewrite.py --out /tmp/bench --logdir /tmp/bench/runs
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prompt_gym.agents import greedy
from prompt_gym.agents.episodes import Episode, ci95
from prompt_gym.agents.lm_ppo import ppo as lm_ppo
from prompt_gym.agents.lm_ppo import sft as lm_sft
from prompt_gym.agents.lm_rollout import TokenSpace, make_venv, run_rewriter, text_rewriter

from prompt_gym.envs.prompt_rewrite import SEPARATOR

ENV_ID = "PromptRewriteTokens-Shapes-v0"
OUT = Path(__file__).parent / "out"
EVAL_SEED = 10_000
APPENDIX_D = [
    "artstation, highly detailed, elegant",
    "8 k, trending on artstation, concept art",
    "digital painting, intricate, fantasy",
    "illustration, smooth, octane render",
    "digital art, 8k, intricate",
    "highly detailed, elegant, smooth",
]
"""Promptist's Appendix D tag groups, verbatim."""


def tag_groups(pairs: list[tuple[str, str]], seed: int, top: int = 15) -> list[str]:
    """Six groups of three of the ``top`` most frequent modifiers of the SFT targets."""
    counts = collections.Counter(
        m for source, target in pairs for m in target[len(source) :].split(SEPARATOR) if m
    )
    frequent = [m for m, _ in counts.most_common(top)]
    rng = np.random.default_rng(seed)
    size = min(3, len(frequent))
    return [SEPARATOR.join(rng.choice(frequent, size=size, replace=False)) for _ in range(6)]


def row(episodes: list[Episode]) -> dict[str, float]:
    """Mean reward (with its 95% CI half-width) and its parts."""
    returns = [e.ret for e in episodes]
    return {
        "reward": float(np.mean(returns)),
        "ci95": ci95(returns),
        "relevance": float(np.mean([e.info["relevance"] for e in episodes])),
        "aesthetic": float(np.mean([e.info["aesthetic"] for e in episodes])),
    }


def fixed_rows(episodes: int, pairs: list[tuple[str, str]], seed: int) -> dict[str, dict[str, Any]]:
    """Plain, tag and greedy rows on the test episodes (tag groups chosen on train episodes)."""
    test = make_venv(ENV_ID, min(64, episodes), {"split": "test"})
    train = make_venv(ENV_ID, min(64, episodes), {"split": "train"})
    space = TokenSpace.of(test)
    test_seeds = list(range(EVAL_SEED, EVAL_SEED + episodes))
    train_seeds = list(range(episodes))

    def suffix(tags: str) -> Any:
        return text_rewriter(space, lambda s: s + SEPARATOR + tags)

    rows: dict[str, dict[str, Any]] = {
        "plain": row(run_rewriter(test, text_rewriter(space, lambda s: s), test_seeds))
    }
    for name, groups in (("tags", tag_groups(pairs, seed)), ("tags (App. D verbatim)", APPENDIX_D)):
        on_train = {g: row(run_rewriter(train, suffix(g), train_seeds)) for g in groups}
        on_test = {g: row(run_rewriter(test, suffix(g), test_seeds)) for g in groups}
        best = max(on_train, key=lambda g: on_train[g]["reward"])  # chosen without the test set
        rows[f"{name}, best of 6 (chosen on train)"] = {
            **on_test[best],
            "tags": best,
            "train_reward": on_train[best]["reward"],
            "test_best_tags": max(on_test, key=lambda g: on_test[g]["reward"]),
        }
        rows[f"{name}, mean of 6"] = {
            k: float(np.mean([p[k] for p in on_test.values()])) for k in on_test[best]
        }
    test.close()
    train.close()
    rows["greedy (test-time search)"] = row(
        greedy.evaluate(ENV_ID, episodes, EVAL_SEED, {"split": "test"}, batch=64)
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="training seeds")
    parser.add_argument("--total-timesteps", type=int, default=80_000, help="PPO env steps")
    parser.add_argument("--episodes", type=int, default=256, help="test episodes")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the .md and .json")
    parser.add_argument(
        "--logdir", default=None, help="parent of the runs (default <out>/lm_ppo_runs)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = []
    for seed in range(1, args.seeds + 1):
        run_args = lm_ppo.Args(
            seed=seed,
            total_timesteps=args.total_timesteps,
            eval_episodes=args.episodes,
            eval_seed=EVAL_SEED,
            logdir=args.logdir or str(args.out / "lm_ppo_runs"),
        )
        summary = lm_ppo.train(run_args)
        print(
            f"seed {seed}: SFT {summary['sft_eval']['mean_return']:.3f} -> "
            f"PPO {summary['eval']['mean_return']:.3f} in {summary['seconds']:.0f} s"
        )
        runs.append(summary)
    pairs = lm_sft.read_pairs(Path(runs[0]["run_dir"]) / lm_ppo.PAIRS_FILE)
    rows = fixed_rows(args.episodes, pairs, seed=0)
    for name, key in (("SFT", "sft_eval"), ("SFT+PPO", "eval")):
        per_seed = [r[key] for r in runs]
        rows[name] = {
            "reward": float(np.mean([s["mean_return"] for s in per_seed])),
            "ci95": float(np.mean([s["ci95"] for s in per_seed])),
            "relevance": float(np.mean([s["mean_relevance"] for s in per_seed])),
            "aesthetic": float(np.mean([s["mean_aesthetic"] for s in per_seed])),
        }
    gains = [r["eval"]["mean_return"] - r["sft_eval"]["mean_return"] for r in runs]
    lines = [
        f"LM-PPO on {ENV_ID}: mean promptist-v1 reward on {args.episodes} test episodes "
        f"({args.seeds} training seed(s), {args.total_timesteps} PPO env steps each)",
        "",
        "| method | reward | ±95% CI | relevance | aesthetic |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['reward']:.3f} | {r['ci95']:.3f} | {r['relevance']:.3f} | "
            f"{r['aesthetic']:.3f} |"
        )
    lines += [
        "",
        f"SFT -> PPO gain: {np.mean(gains):+.3f} (per seed: {', '.join(f'{g:+.3f}' for g in gains)})",
    ]
    for name in ("tags", "tags (App. D verbatim)"):
        chosen = rows[f"{name}, best of 6 (chosen on train)"]
        lines.append(
            f"{name}: chosen on {args.episodes} train-split episodes: {chosen['tags']!r} (train "
            f"reward {chosen['train_reward']:.3f}); the best on the test episodes would have been "
            f"{chosen['test_best_tags']!r}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lm_ppo_rewrite.md").write_text("\n".join(lines) + "\n")
    result = {"rows": rows, "gains": gains, "runs": [str(r["run_dir"]) for r in runs]}
    (args.out / "lm_ppo_rewrite.json").write_text(json.dumps(result, indent=2, default=str))
    print("\n".join(lines))
    print(f"\nwrote {args.out}/lm_ppo_rewrite.md, .json")


if __name__ == "__main__":
    main()
