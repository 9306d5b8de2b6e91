"""Plumbing every agent imports: run directories, TensorBoard, checkpoints, seeding, evaluation.

An agent file keeps only its algorithm; everything a run needs around it lives here:

* :func:`new_run_dir` makes a fresh ``<logdir>/<env>__<agent>__s<seed>__<time>`` directory and
  :func:`write_run_info` / :func:`read_run_info` keep its ``run.json`` (agent, env, args);
* :class:`RunLogger` is the run's one TensorBoard ``SummaryWriter`` (a context manager, so it is
  closed even when training is interrupted), with ``backend/`` stats, image grids and text;
* :func:`save_checkpoint` / :func:`find_checkpoint` / :func:`load_checkpoint`, with
  :func:`rng_states` / :func:`set_rng_states` for exact resumes;
* :func:`collect_episodes` runs one whole episode per sub-env of a native vector env (the
  NEXT_STEP autoreset step after an episode ends is handled here), :func:`evaluate` and
  :func:`summarize` turn episodes into the numbers ``prompt-gym eval`` prints;
* :func:`plot_curve` writes the learning-curve PNG.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import random
import re
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import prompt_gym  # noqa: F401  (registers the env ids)
from prompt_gym.backends import RewardBackend
from prompt_gym.throughput import random_valid_actions

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]
"""A batched policy: observations of a vector env in, one action per sub-env out."""

CHECKPOINTS = "checkpoints"
CURVE_PNG = "learning_curve.png"
RUN_INFO = "run.json"
_CKPT = re.compile(r"step_(\d+)\.(pt|zip)$")

# Final-info keys averaged over episodes (and logged under charts/) when an env reports them.
FINAL_INFO_KEYS = {
    "similarity": "final_similarity",
    "relevance": "relevance",
    "aesthetic": "aesthetic",
}


# --------------------------------------------------------------------------------- run dirs
def new_run_dir(logdir: str | Path, env_id: str, agent: str, seed: int) -> Path:
    """Create and return a fresh run directory ``<logdir>/<env>__<agent>__s<seed>__<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(logdir) / f"{env_id}__{agent}__s{seed}__{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def write_run_info(run_dir: Path, agent: str, args: Any) -> None:
    """Write ``run.json``: the agent name and its ``Args`` (a dataclass), for resume and eval."""
    info = {"agent": agent, "args": dataclasses.asdict(args)}
    (run_dir / RUN_INFO).write_text(json.dumps(info, indent=2, default=str))


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """Read a run directory's ``run.json``.

    Raises:
        FileNotFoundError: If ``run_dir`` is not a run directory.
    """
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {RUN_INFO})")
    return json.loads(path.read_text())


def make_args(cls: type, config: dict[str, Any] | None = None, **overrides: Any) -> Any:
    """Build an ``Args`` dataclass from its defaults, then ``config``, then non-``None`` overrides.

    Raises:
        ValueError: On a key that is not a field of ``cls``, naming the valid ones.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class A:
    ...     lr: float = 0.1
    ...     seed: int = 1
    >>> make_args(A, {"lr": 0.5}, seed=None)
    A(lr=0.5, seed=1)
    """
    names = [f.name for f in dataclasses.fields(cls)]
    values = dict(config or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for {cls.__module__}; valid: {names}")
    return cls(**values)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of ``Args`` fields (``--config FILE.yaml``).

    Raises:
        ValueError: If the file does not hold a mapping.
    """
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


# --------------------------------------------------------------------------------- seeding
def seed_everything(seed: int, threads: int) -> None:
    """Seed Python, NumPy and torch, and cap torch's CPU threads."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def rng_states() -> dict[str, Any]:
    """The global random states (Python, NumPy, torch), for a checkpoint.

    Only ints, floats, strings, tuples and a tensor, so that the checkpoint loads with
    ``torch.load(weights_only=True)``; :func:`set_rng_states` restores them exactly.
    """
    numpy = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),  # (version, 625 ints, gauss_next)
        "numpy": {
            "bit_generator": str(numpy["bit_generator"]),
            "key": tuple(int(k) for k in numpy["state"]["key"]),
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore states saved by :func:`rng_states`."""
    version, mt, gauss = states["python"]
    random.setstate((version, tuple(mt), gauss))
    numpy = states["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy["bit_generator"],
            "state": {"key": np.array(numpy["key"], dtype=np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(states["torch"])


def episode_seeds(seed: int, index: int, n: int) -> list[int]:
    """``n`` reset seeds for batch ``index`` of a run, a pure function of ``(seed, index)``.

    Rollouts re-seed their envs from it, so a resumed run meets the same episodes.

    >>> episode_seeds(1, 0, 2) == episode_seeds(1, 0, 2) != episode_seeds(1, 1, 2)
    True
    """
    return [int(s) for s in np.random.SeedSequence([seed, index]).generate_state(n)]


# --------------------------------------------------------------------------------- logging
class RunLogger:
    """The run's TensorBoard writer; use it as a context manager so it is always closed.

    Args:
        run_dir: Where the event files go.
        purge_step: On resume, the checkpoint's step: events logged after it by the interrupted
            run are dropped, so the curve has no doubled tail.
    """

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard reads a directory's event files in name order, and a name starts with the
        # second it was made: a resumed run's file must not share the interrupted one's second.
        stamps = [int(p.name.split(".")[3]) for p in Path(run_dir).glob("events.out.tfevents.*")]
        while stamps and time.time() < max(stamps) + 1:
            time.sleep(0.05)
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Log ``{tag: value}`` at ``step`` (non-finite values are skipped)."""
        for tag, value in values.items():
            if value is not None and math.isfinite(float(value)):
                self.writer.add_scalar(tag, float(value), step)

    def backend(self, backend: RewardBackend, step: int) -> None:
        """Log the backend's cumulative stats under ``backend/``."""
        self.scalars(backend_scalars(backend), step)

    def image(self, tag: str, frame: np.ndarray, step: int) -> None:
        """Log a ``uint8 (H, W, 3)`` image."""
        self.writer.add_image(tag, frame, step, dataformats="HWC")

    def text(self, tag: str, text: str, step: int) -> None:
        """Log markdown text."""
        self.writer.add_text(tag, text, step)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def backend_scalars(backend: RewardBackend) -> dict[str, float]:
    """``backend/cache_hit_rate``, ``backend/images_per_s``, ``backend/images_generated``."""
    stats = backend.stats
    return {
        "backend/cache_hit_rate": stats.cache_hit_rate,
        "backend/images_per_s": stats.images_per_s,
        "backend/images_generated": stats.images_generated,
    }


def episode_scalars(episodes: Sequence[Episode]) -> dict[str, float]:
    """``charts/`` means over finished episodes: return, length, prompt length, final scores."""
    out = {
        "charts/episodic_return": float(np.mean([e.ret for e in episodes])),
        "charts/episode_length": float(np.mean([e.length for e in episodes])),
        "charts/prompt_length": float(np.mean([e.prompt_length for e in episodes])),
    }
    for key, name in FINAL_INFO_KEYS.items():
        values = [float(e.info[key]) for e in episodes if key in e.info]
        if values:
            out[f"charts/{name}"] = float(np.mean(values))
    return out


def top_prompts(
    best: list[dict[str, Any]], episodes: Sequence[Episode], k: int = 5
) -> list[dict[str, Any]]:
    """The ``k`` best ``{return, prompt, target}`` records of ``best`` and ``episodes``."""
    new = [
        {
            "return": e.ret,
            "prompt": str(e.info.get("prompt", "")),
            "target": str(e.info.get("target_id", e.info.get("source", ""))),
        }
        for e in episodes
    ]
    return sorted(best + new, key=lambda b: -b["return"])[:k]


def log_examples(
    logger: RunLogger,
    env_id: str,
    env_kwargs: dict[str, Any],
    policy: Policy,
    state: dict[str, Any],
    options: dict[str, Any] | None = None,
    n: int = 4,
    seed: int = 123_456,
) -> None:
    """Log the greedy policy's final frames (target | generated, a row per episode) and prompts.

    Also logs ``text/best_prompts``, the best prompts seen in training (``state["best"]``).
    """
    step = state["global_step"]
    venv = gym.make_vec(env_id, num_envs=n, render_mode="rgb_array", **env_kwargs)
    try:
        episodes = collect_episodes(
            venv, policy, [seed + i for i in range(n)], options, render=True
        )
    finally:
        venv.close()
    logger.image("images/target_vs_generated", stack_frames([e.frame for e in episodes]), step)
    logger.text("text/example_prompts", prompts_markdown(top_prompts([], episodes, k=n)), step)
    logger.text("text/best_prompts", prompts_markdown(state["best"]), step)


def prompts_markdown(records: Sequence[dict[str, Any]]) -> str:
    """A markdown table of ``{return, prompt, target}`` records."""
    rows = ["| return | prompt | target / source |", "|---|---|---|"]
    rows += [f"| {r['return']:.4f} | {r['prompt']} | {r['target']} |" for r in records]
    return "\n".join(rows)


def stack_frames(frames: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    """Frames top to bottom on white, padded to the widest: ``uint8 (H, W, 3)``.

    >>> stack_frames([np.zeros((2, 3, 3), np.uint8), np.zeros((2, 5, 3), np.uint8)]).shape
    (6, 5, 3)
    """
    width = max(f.shape[1] for f in frames)
    height = sum(f.shape[0] for f in frames) + gap * (len(frames) - 1)
    grid = np.full((height, width, 3), 255, dtype=np.uint8)
    y = 0
    for f in frames:
        grid[y : y + f.shape[0], : f.shape[1]] = f
        y += f.shape[0] + gap
    return grid


def progress_bar(total: int, initial: int = 0, desc: str = "train") -> tqdm:
    """A tqdm bar over environment steps."""
    return tqdm(
        total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, mininterval=0.5
    )


# --------------------------------------------------------------------------------- checkpoints
def checkpoint_path(run_dir: Path, step: int, ext: str = "pt") -> Path:
    """``<run_dir>/checkpoints/step_<step>.<ext>``."""
    return Path(run_dir) / CHECKPOINTS / f"step_{step:09d}.{ext}"


def save_checkpoint(state: dict[str, Any], path: Path, keep: int = 3) -> Path:
    """Write ``state`` (see :func:`write_checkpoint`); keep the newest ``keep`` checkpoints."""
    write_checkpoint(state, path)
    prune_checkpoints(path.parent, keep, path.suffix)
    return path


def write_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` with ``torch.save`` atomically, checked first by :func:`check_plain`.

    Raises:
        TypeError: If ``state`` holds anything :func:`load_checkpoint` would refuse.
    """
    check_plain(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


_PLAIN = (str, int, float, bool, type(None))


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """Check that ``value`` is what ``torch.load(weights_only=True)`` reads back as it was.

    That is tensors, ``str``, ``int``, ``float``, ``bool``, ``None``, and lists, tuples and
    dicts (with ``str`` or ``int`` keys) of them. NumPy values are not (``np.float64`` is a
    ``float`` subclass, but it pickles as a NumPy global): convert them with ``.item()`` or
    ``.tolist()`` before saving.

    Raises:
        TypeError: Naming the first value that is not plain and where it is.

    >>> check_plain({"step": 3, "curve": [(1, 0.5)], "w": torch.zeros(2)})
    >>> check_plain({"x": np.float64(1.0)})
    Traceback (most recent call last):
    ...
    TypeError: checkpoint['x'] is a float64, which torch.load(weights_only=True) refuses; save plain types
    """
    if isinstance(value, torch.Tensor) or type(value) in _PLAIN:
        return
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}")
            check_plain(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}, which torch.load(weights_only=True) refuses; "
        "save plain types"
    )


def prune_checkpoints(folder: Path, keep: int, ext: str) -> None:
    """Delete all but the newest ``keep`` checkpoints with extension ``ext``."""
    old = sorted(p for p in folder.glob(f"step_*{ext}") if _CKPT.search(p.name))[:-keep]
    for p in old:
        p.unlink()
        p.with_suffix(".state.pt").unlink(missing_ok=True)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or the latest one of a run directory.

    Raises:
        FileNotFoundError: If there is no such file or the run has no checkpoint yet.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint or run directory at {path}")
    found = sorted(p for p in (path / CHECKPOINTS).glob("step_*") if _CKPT.search(p.name))
    if not found:
        raise FileNotFoundError(f"run directory {path} has no checkpoint in {CHECKPOINTS}/ yet")
    return found[-1]


def load_checkpoint(path: Path, keys: Sequence[str] = ()) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, safely: nothing in it can run.

    It loads with ``torch.load(weights_only=True)``, which reads back tensors and plain
    containers and refuses a pickle that would import or call anything, so a checkpoint from
    someone else cannot run code.

    Args:
        path: The checkpoint file.
        keys: Keys the checkpoint must have (those its agent reads).

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not such a checkpoint (another kind of file, a truncated
            one, a pickle of other objects, a dict without ``keys``), in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        with warnings.catch_warnings():  # a plain pickle's protocol warning adds nothing here
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad file; all mean the same
        raise ValueError(
            f"{path} is not a prompt-gym checkpoint that loads safely ({load_failure(err)})"
        ) from err
    if not isinstance(state, dict):
        raise ValueError(
            f"{path} is not a prompt-gym checkpoint (it holds a {type(state).__name__}, not a dict)"
        )
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"{path} is not a checkpoint of this agent (it has no {missing})")
    return state


def load_failure(err: Exception) -> str:
    """One line on why ``torch.load(weights_only=True)`` failed (torch's own message is long)."""
    text = str(err)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if refused:
        return f"it would load {refused[1]}, and checkpoints load with weights_only=True"
    if isinstance(err, pickle.UnpicklingError):
        return "not a torch file of tensors and plain containers"
    if isinstance(err, EOFError) or "zip archive" in text:
        return "empty, truncated or not a torch file"
    return text.splitlines()[0] if text.strip() else type(err).__name__


# --------------------------------------------------------------------------------- episodes
@dataclasses.dataclass
class Episode:
    """One finished episode.

    Attributes:
        obs: Each observation key stacked over the episode's steps, ``(T, ...)``.
        actions: ``int64 (T,)``.
        rewards: ``float64 (T,)``.
        info: The info of the last step.
        seed: The reset seed.
        frame: The final ``render()`` frame when collected with ``render=True``.
    """

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    info: dict[str, Any]
    seed: int | None
    frame: np.ndarray | None = None

    @property
    def ret(self) -> float:
        """Undiscounted return."""
        return float(self.rewards.sum())

    @property
    def length(self) -> int:
        """Number of steps."""
        return len(self.actions)

    @property
    def prompt_length(self) -> int:
        """Tokens or modifiers chosen (steps when the env does not say)."""
        for key in ("num_tokens", "num_modifiers"):
            if key in self.info:
                return int(self.info[key])
        return self.length


def _row(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Sub-env ``i``'s entries of a vector env's batched info dict."""
    return {k: v[i] for k, v in infos.items() if not k.startswith("_") and infos[f"_{k}"][i]}


def collect_episodes(
    venv: gym.vector.VectorEnv,
    policy: Policy,
    seeds: Sequence[int | None],
    options: dict[str, Any] | None = None,
    render: bool = False,
) -> list[Episode]:
    """Run exactly one episode in each sub-env of a native vector env, all in lockstep.

    The vector env uses NEXT_STEP autoreset: the step after an episode ends is a reset step
    whose action is ignored and whose reward is 0. A sub-env whose episode is over takes no
    more part: its reset step is dropped and, until the slowest episode ends, it sends its last
    valid action (STOP, which ends its fresh episode at once) or, in an env without an
    ``action_mask``, the policy's action; none of it is recorded.

    Args:
        venv: A prompt-gym native vector env (``gym.make_vec(id, num_envs=len(seeds))``).
        policy: Batched policy; it sees every sub-env's observation each step.
        seeds: One reset seed per sub-env (``None`` continues its random stream).
        options: Reset options for every sub-env (e.g. ``{"target_index": 3}``).
        render: Keep each episode's final ``render()`` frame (needs ``render_mode``).
    """
    n = venv.num_envs
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} sub-envs")
    obs, _ = venv.reset(seed=list(seeds), options=options)
    steps: list[list[tuple[dict[str, np.ndarray], int, float]]] = [[] for _ in range(n)]
    finals: list[dict[str, Any] | None] = [None] * n
    frames: list[np.ndarray | None] = [None] * n
    running = np.ones(n, dtype=bool)
    while running.any():
        actions = np.asarray(policy(obs), dtype=np.int64)
        idle = ~running
        if "action_mask" in obs:
            masks = obs["action_mask"].astype(bool)[idle]
            actions[idle] = [np.flatnonzero(m)[-1] if m.any() else 0 for m in masks]
        next_obs, rewards, terminated, truncated, infos = venv.step(actions)
        done = (terminated | truncated) & running
        for i in np.flatnonzero(running):
            steps[i].append(({k: v[i] for k, v in obs.items()}, int(actions[i]), float(rewards[i])))
            if done[i]:
                finals[i] = _row(infos, i)
        if render and done.any():
            rendered = venv.render()
            for i in np.flatnonzero(done):
                frames[i] = rendered[i]
        running &= ~done
        obs = next_obs
    return [
        Episode(
            obs={k: np.stack([s[0][k] for s in steps[i]]) for k in steps[i][0][0]},
            actions=np.array([s[1] for s in steps[i]], dtype=np.int64),
            rewards=np.array([s[2] for s in steps[i]], dtype=np.float64),
            info=finals[i],
            seed=seeds[i],
            frame=frames[i],
        )
        for i in range(n)
    ]


def evaluate(
    policy: Policy,
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    batch: int = 32,
) -> list[Episode]:
    """Evaluation episodes: episode ``i`` is reset with seed ``seed + i``, ``batch`` at a time."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out: list[Episode] = []
    for start in range(0, episodes, batch):
        seeds = list(range(seed + start, seed + min(episodes, start + batch)))
        venv = gym.make_vec(env_id, num_envs=len(seeds), **(env_kwargs or {}))
        try:
            out += collect_episodes(venv, policy, seeds, options)
        finally:
            venv.close()
    return out


def ci95(values: Iterable[float]) -> float:
    """Half-width of a normal-approximation 95% confidence interval of the mean.

    >>> ci95([1.0, 1.0])
    0.0
    """
    x = np.asarray(list(values), dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    return float(1.96 * x.std(ddof=1) / math.sqrt(len(x)))


def summarize(episodes: Sequence[Episode], env_id: str, n_examples: int = 5) -> dict[str, Any]:
    """The numbers ``prompt-gym eval`` reports for a list of episodes."""
    returns = [e.ret for e in episodes]
    out: dict[str, Any] = {
        "env_id": env_id,
        "episodes": len(episodes),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "ci95": ci95(returns),
        "mean_length": float(np.mean([e.length for e in episodes])),
        "mean_prompt_length": float(np.mean([e.prompt_length for e in episodes])),
    }
    for key, name in FINAL_INFO_KEYS.items():
        values = [float(e.info[key]) for e in episodes if key in e.info]
        if values:
            out[f"mean_{name}"] = float(np.mean(values))
    keep = ("prompt", "similarity", "target_id", "source", "relevance", "aesthetic")
    out["examples"] = [
        {"seed": e.seed, "return": e.ret, **{k: _plain(e.info[k]) for k in keep if k in e.info}}
        for e in episodes[:n_examples]
    ]
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class RandomPolicy:
    """Masked uniform: a valid action drawn uniformly per sub-env, from a seeded generator.

    Args:
        seed: Seed of its generator.
        n_actions: Size of the ``Discrete`` action space, needed only for envs without an
            ``action_mask`` observation (then every action counts as valid).
    """

    def __init__(self, seed: int = 0, n_actions: int | None = None) -> None:
        self.rng, self.n_actions = np.random.default_rng(seed), n_actions

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if "action_mask" not in obs:
            if self.n_actions is None:
                raise ValueError("this env has no action_mask: give RandomPolicy n_actions")
            n = len(next(iter(obs.values())))
            return self.rng.integers(self.n_actions, size=n)
        masks = obs["action_mask"].astype(bool)
        masks[~masks.any(axis=1)] = True  # a finished episode's action is ignored
        return random_valid_actions(masks, self.rng)


def evaluate_random(
    env_id: str, episodes: int, seed: int = 0, env_kwargs: dict[str, Any] | None = None
) -> list[Episode]:
    """:func:`evaluate` with :class:`RandomPolicy` seeded ``seed`` (the ``random`` baseline)."""
    env = gym.make(env_id, **(env_kwargs or {}))
    n_actions = int(env.action_space.n)
    env.close()
    return evaluate(RandomPolicy(seed, n_actions), env_id, episodes, seed, env_kwargs)


# --------------------------------------------------------------------------------- curves
def plot_curve(
    points: Sequence[tuple[int, float]],
    path: Path,
    title: str,
    baseline: float | None = None,
) -> Path:
    """Write a PNG of mean episodic return against environment steps (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if points:
        x, y = np.array([p[:2] for p in points], dtype=np.float64).T
        ax.plot(x, y, alpha=0.35, color="C0", label="batch mean")
        k = max(1, len(y) // 20)
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(x[k - 1 :], smooth, color="C0", label=f"moving mean ({k})")
    if baseline is not None:
        ax.axhline(baseline, color="gray", ls="--", label="random agent (eval)")
    ax.set(xlabel="environment steps", ylabel="episodic return", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def finish_run(
    log: RunLogger,
    run_dir: Path,
    agent: str,
    args: Any,
    policy: Policy,
    env_kwargs: dict[str, Any],
    options: dict[str, Any] | None,
    state: dict[str, Any],
) -> dict[str, Any]:
    """End of a run: greedy and random evaluation, the last examples, the curve PNG, a summary.

    Returns:
        ``run_dir``, ``curve_png``, ``global_step``, ``seconds``, ``final_return`` (mean
        training return over the last tenth of updates), ``eval`` and ``random_eval`` (see
        :func:`summarize`), ``best_prompt`` and ``curve`` (``(step, return, seconds)`` rows).
    """
    log_examples(log, args.env_id, env_kwargs, policy, state, options)
    final = summarize(
        evaluate(policy, args.env_id, args.eval_episodes, args.eval_seed, env_kwargs, options),
        args.env_id,
    )
    rand = summarize(
        evaluate(
            RandomPolicy(args.eval_seed),
            args.env_id,
            args.eval_episodes,
            args.eval_seed,
            env_kwargs,
            options,
        ),
        args.env_id,
    )
    log.scalars(
        {"eval/mean_return": final["mean_return"], "eval/random_mean_return": rand["mean_return"]},
        state["global_step"],
    )
    curve = state["curve"]
    png = plot_curve(
        curve,
        run_dir / CURVE_PNG,
        f"{agent} on {args.env_id} (seed {args.seed})",
        rand["mean_return"],
    )
    tail = [p[1] for p in curve[-max(1, len(curve) // 10) :]]
    return {
        "run_dir": run_dir,
        "curve_png": png,
        "global_step": state["global_step"],
        "seconds": state["seconds"],
        "final_return": float(np.mean(tail)) if tail else float("nan"),
        "eval": final,
        "random_eval": rand,
        "best_prompt": state["best"][0] if state["best"] else None,
        "curve": list(curve),
    }


def print_interrupted(run_dir: Path, step: int) -> None:
    """Tell the user how to continue an interrupted run (from its latest checkpoint)."""
    try:
        latest = find_checkpoint(run_dir).name
    except FileNotFoundError:
        latest = "none yet: it will start over"
    print(f"\ninterrupted at step {step}; latest checkpoint: {latest}")
    print(f"continue with: prompt-gym train --resume {run_dir}")


def print_report(lines: dict[str, str]) -> None:
    """Print ``key: value`` lines, aligned."""
    width = max(len(k) for k in lines)
    for key, value in lines.items():
        print(f"{key + ':':{width + 1}s} {value}")
