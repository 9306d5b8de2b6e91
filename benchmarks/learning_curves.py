"""Learning curves of every agent on every Shapes id: CSV, PNG (mean and 95% band), markdown table.

Each (agent, env) pair is trained for several seeds through the agents' own ``train`` functions;
the final greedy policy and the masked-uniform random agent are evaluated on the same fixed
episodes (seeds ``10000 + i``). ``PromptRewriteTokens-Shapes-v0`` is left out: its action is a
vocabulary token with no candidate list or mask, which is the LM-PPO agent's job.

Headline check: REINFORCE on ``ImageInversion-Shapes-v0`` (level ``objects``) should reach 90% of
the *best achievable* similarity within 2 minutes on a 2-core CPU. Best achievable, per
evaluation episode: the similarity to the target of the target's own canonical prompt
(``target.caption``, the scene spec written out) rendered with that episode's image seeds, i.e.
what an inverter that knew the scene would score. Also reported: the best prompt inside the
action space (every in-order subset of the episode's candidate tokens, brute force).

Outputs go to ``benchmarks/out/`` (git-ignored): ``learning_curves.csv``, ``learning_curves.png``,
``learning_curves.md``.

Usage::

    python benchmarks/learning_curves.py            # 3 seeds, every pair (about 10 minutes)
    python benchmarks/learning_curves.py --quick    # 2 seeds, REINFORCE + MaskablePPO only
"""

from __future__ import annotations

import argparse
import csv
import itertools
import shutil
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
from prompt_gym.agents import common, reinforce, sb3_ppo

import prompt_gym  # noqa: F401
from prompt_gym.rewards import image_similarity

OUT = Path(__file__).parent / "out"
EVAL_SEED, EVAL_EPISODES = 10_000, 64
HEADLINE = ("reinforce", "ImageInversion-Shapes-v0")

# (agent, env id) -> total env steps per seed
BUDGETS: dict[tuple[str, str], int] = {
    ("reinforce", "ImageInversion-Shapes-v0"): 40_000,
    ("maskable-ppo", "ImageInversion-Shapes-v0"): 30_000,
    ("ppo", "ImageInversion-Shapes-v0"): 30_000,
    ("reinforce", "PromptRewrite-Shapes-v0"): 15_000,
    ("maskable-ppo", "PromptRewrite-Shapes-v0"): 15_000,
    ("ppo", "PromptRewrite-Shapes-v0"): 15_000,
}


def make_args(agent: str, env_id: str, seed: int, steps: int, logdir: Path):
    """The agent's ``Args`` for one benchmark run."""
    shared = {"env_id": env_id, "seed": seed, "total_timesteps": steps, "logdir": str(logdir)}
    shared.update(eval_episodes=EVAL_EPISODES, eval_seed=EVAL_SEED)
    if agent == "reinforce":
        policy = "candidates" if env_id.startswith("ImageInversion") else "mlp"
        return reinforce, reinforce.Args(policy=policy, **shared)
    return sb3_ppo, sb3_ppo.Args(algo=agent, **shared)


def best_achievable(env_id: str, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per episode: similarity of the target's caption, and of the best in-order candidate subset."""
    env = gym.make(env_id)
    core, backend = env.unwrapped.core, env.unwrapped.backend
    caption, oracle = [], []

    def sim(prompt: str) -> float:
        r = backend.score([prompt] * core.num_images, core.episode_seeds)
        return image_similarity(r.image_embeds, core.target_embed, r.valid)

    for seed in seeds:
        env.reset(seed=seed)
        caption.append(sim(core.target.caption))
        words = core.words
        subsets = itertools.chain.from_iterable(
            itertools.combinations(range(len(words)), k) for k in range(1, len(words) + 1)
        )
        oracle.append(max(sim(" ".join(words[i] for i in s)) for s in subsets))
    env.close()
    return np.array(caption), np.array(oracle)


def trailing_mean(y: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` values at each point (fewer at the start).

    >>> trailing_mean(np.array([1.0, 3.0, 5.0]), 2).tolist()
    [1.0, 2.0, 4.0]
    """
    c = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(1, len(y) + 1)
    lo = np.maximum(0, i - k)
    return (c[i] - c[lo]) / (i - lo)


def band(curves: list[np.ndarray], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 95% half-width over seeds of smoothed curves interpolated on ``grid``."""
    ys = []
    for c in curves:
        ys.append(np.interp(grid, c[:, 0], trailing_mean(c[:, 1], max(1, len(c) // 25))))
    ys = np.array(ys)
    half = 1.96 * ys.std(axis=0, ddof=1) / np.sqrt(len(ys)) if len(ys) > 1 else 0 * ys[0]
    return ys.mean(axis=0), half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 seeds, no plain PPO, half budgets")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the outputs from <out>/runs, no training",
    )
    opts = parser.parse_args()
    budgets = dict(BUDGETS)
    if opts.quick:
        opts.seeds = min(opts.seeds, 2)
        budgets = {k: v // 2 for k, v in budgets.items() if k[0] != "ppo"}
    runs_dir = opts.out / "runs"
    if not opts.report_only:
        shutil.rmtree(runs_dir, ignore_errors=True)
        for (agent, env_id), steps in budgets.items():
            for seed in range(1, opts.seeds + 1):
                module, args = make_args(agent, env_id, seed, steps, runs_dir)
                s = module.train(args)
                print(
                    f"{agent:12s} {env_id:26s} seed {seed}: eval {s['eval']['mean_return']:.4f} "
                    f"random {s['random_eval']['mean_return']:.4f} ({s['seconds']:.0f} s training)"
                )
    report(runs_dir, opts.out)


def load_runs(runs_dir: Path) -> dict[tuple[str, str], list[dict]]:
    """Every finished run under ``runs_dir``, re-evaluated from its latest checkpoint."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for run_dir in sorted(p for p in runs_dir.iterdir() if (p / common.RUN_INFO).is_file()):
        info = common.read_run_info(run_dir)
        ckpt = common.find_checkpoint(run_dir)
        module = reinforce if info["agent"] == "reinforce" else sb3_ppo
        meta = ckpt.with_suffix(".state.pt") if ckpt.suffix == ".zip" else ckpt
        state = common.load_checkpoint(meta)["state"]
        policy, args = module.load_policy(ckpt)
        kwargs = module.env_kwargs(args)
        evaluate = partial(
            common.evaluate,
            env_id=args.env_id,
            episodes=EVAL_EPISODES,
            seed=EVAL_SEED,
            env_kwargs=kwargs,
        )
        summary = {
            "agent": info["agent"],
            "args": args,
            "checkpoint": ckpt,
            "curve": state["curve"],
            "seconds": state["seconds"],
            "global_step": state["global_step"],
            "eval": common.summarize(evaluate(policy), args.env_id),
            "random_eval": common.summarize(evaluate(common.RandomPolicy(EVAL_SEED)), args.env_id),
        }
        runs.setdefault((info["agent"], args.env_id), []).append(summary)
    return runs


def report(runs_dir: Path, out: Path) -> None:
    """CSV of every curve, the PNG, and the markdown table (with the headline check)."""
    runs = load_runs(runs_dir)
    with open(out / "learning_curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["agent", "env_id", "seed", "env_steps", "seconds", "episodic_return"])
        for (agent, env_id), summaries in runs.items():
            for s in summaries:
                writer.writerows(
                    (agent, env_id, s["args"].seed, step, f"{t:.2f}", f"{r:.5f}")
                    for step, r, t in s["curve"]
                )
    plot(runs, out / "learning_curves.png")
    table = markdown(runs)
    if HEADLINE in runs:
        table += "\n\n" + headline(runs[HEADLINE])
    (out / "learning_curves.md").write_text(table + "\n")
    print(table)
    print(f"\nwrote {out}/learning_curves.csv, .png, .md")


def plot(runs: dict[tuple[str, str], list[dict]], path: Path) -> None:
    """One panel per env: mean return vs env steps with a 95% band over seeds, per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({e for _, e in runs})
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4), dpi=100, squeeze=False)
    for ax, env_id in zip(axes[0], envs, strict=True):
        random_means = []
        for i, ((agent, e), summaries) in enumerate(runs.items()):
            if e != env_id:
                continue
            curves = [np.array([p[:2] for p in s["curve"]]) for s in summaries]
            grid = np.linspace(0, min(c[-1, 0] for c in curves), 200)
            mean, half = band(curves, grid)
            ax.plot(grid, mean, color=f"C{i}", label=f"{agent} ({len(curves)} seeds)")
            ax.fill_between(grid, mean - half, mean + half, color=f"C{i}", alpha=0.2)
            random_means += [s["random_eval"]["mean_return"] for s in summaries]
        ax.axhline(np.mean(random_means), color="gray", ls="--", label="random agent")
        ax.set(title=env_id, xlabel="environment steps", ylabel="episodic return (training)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(runs: dict[tuple[str, str], list[dict]]) -> str:
    """Final greedy evaluation per (agent, env), mean +- 95% over seeds, with the random agent."""
    lines = [
        f"| env | agent | seeds | env steps | train s | eval return ({EVAL_EPISODES} eps) | random |",
        "|---|---|---|---|---|---|---|",
    ]
    for (agent, env_id), ss in runs.items():
        ev = [s["eval"]["mean_return"] for s in ss]
        rnd = ss[0]["random_eval"]
        lines.append(
            f"| {env_id} | {agent} | {len(ss)} | {ss[0]['global_step']} | "
            f"{np.mean([s['seconds'] for s in ss]):.0f} | {np.mean(ev):.4f} +- {common.ci95(ev) if len(ev) > 1 else 0:.4f} | "
            f"{rnd['mean_return']:.4f} +- {rnd['ci95']:.4f} |"
        )
    return "\n".join(lines)


def headline(summaries: list[dict]) -> str:
    """REINFORCE on ImageInversion-Shapes-v0 against the best achievable similarity.

    Besides the ratio to the best, reports the fraction of the gap between the random agent and
    the best that the policy closes, since a random prompt of candidate words already scores high.
    """
    env_id = HEADLINE[1]
    seeds = list(range(EVAL_SEED, EVAL_SEED + EVAL_EPISODES))
    caption, oracle = best_achievable(env_id, seeds)
    best, rnd = caption.mean(), summaries[0]["random_eval"]["mean_return"]
    lines = [
        f"REINFORCE on {env_id}, {EVAL_EPISODES} eval episodes: best achievable similarity "
        f"(target caption) {best:.4f}, best candidate subset {oracle.mean():.4f}, random agent "
        f"{rnd:.4f}; 90% of best = {0.9 * best:.4f}"
    ]
    for s in summaries:
        sim, args = s["eval"]["mean_final_similarity"], s["args"]
        curve = np.array(s["curve"])
        k = max(1, len(curve) // 25)
        hit = np.flatnonzero(trailing_mean(curve[:, 1], k)[k - 1 :] >= 0.9 * best)
        when = "not reached"
        if len(hit):
            step, seconds = curve[hit[0] + k - 1, 0], curve[hit[0] + k - 1, 2]
            when = f"{seconds:.0f} s ({int(step)} steps)"
        lines.append(
            f"- seed {args.seed}: greedy similarity {sim:.4f} = {100 * sim / best:.1f}% of best "
            f"({100 * sim / oracle.mean():.1f}% of the subset oracle; "
            f"{100 * (sim - rnd) / (best - rnd):.0f}% of the random-to-best gap) after "
            f"{s['seconds']:.0f} s of training; the training curve (moving mean of {k} updates) "
            f"crossed 90% of best at {when}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
