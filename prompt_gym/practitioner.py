"""``prompt-gym invert`` and ``prompt-gym rewrite``: the two commands for practitioners.

* ``invert IMAGE [IMAGE ...]``: a prompt that reproduces an image (PNG/JPG), by the greedy
  caption-word search (default), PEZ (gradient through a CLIP text encoder: the backend's own, or
  on the shapes presets the shapes-clip proxy), or a short per-target REINFORCE run. Several
  images (PEZ only) get one prompt for all of them (PEZ's style / multi-image inversion). Prints
  the prompt and the similarity of its regenerated image to each target, writes the prompt to
  ``--out`` and the regenerated image beside it.
* ``distill "PROMPT" --tokens K``: PEZ prompt distillation, a ``K``-token prompt with the same
  text embedding; prints it and the share of the prompt's image similarity it keeps.
* ``rewrite "PROMPT"``: a better prompt and its reward parts; with ``--checkpoint`` an LM-PPO
  run rewrites it, otherwise the greedy modifier search (the baseline) does.

The agents need the ``agents`` extra; they are imported when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from prompt_gym.checks import nonnegative_int, positive_int
from prompt_gym.progress import bar

INVERT_METHODS = ("greedy", "pez", "reinforce")
INVERT_ID = "ImageInversion-v0"
REWRITE_ID = "PromptRewrite-v0"


# ===================================================================================== helpers
def load_image(path: str | Path) -> np.ndarray:
    """A PNG/JPG file as ``uint8 (H, W, 3)``.

    PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) is a hard limit here: an image
    above it is refused, not decoded with a warning.

    Raises:
        ValueError: If the file is missing, is not an image, is truncated or corrupt, or has more
            pixels than ``Image.MAX_IMAGE_PIXELS``.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no image at {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError as err:
        raise ValueError(f"{path} is not an image PIL can read") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(
            f"{path} has more pixels than PIL's limit of {Image.MAX_IMAGE_PIXELS} (a possible "
            "decompression bomb); resize it first"
        ) from err
    except (OSError, SyntaxError) as err:  # truncated or corrupt data (PIL raises both)
        raise ValueError(f"{path} is a truncated or corrupt image ({err})") from err


def save_image(image: np.ndarray, path: Path) -> Path:
    """Write ``uint8 (H, W, 3)`` as PNG."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)
    return path


def _backend(name: str | None, env_id: str) -> Any:
    import gymnasium as gym

    import prompt_gym  # noqa: F401  (registers the ids)
    from prompt_gym.backends.factory import shared_backend

    return shared_backend(name or gym.spec(env_id).kwargs["backend"])


def _agents(what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"prompt_gym.agents.{what}")
    except ImportError as err:
        raise ValueError(
            f"this command needs the 'agents' extra: pip install 'prompt-gym[agents]' ({err})"
        ) from err


def greedy_episode(env: Any, seed: int, options: dict[str, Any]) -> dict[str, Any]:
    """One episode of the greedy baseline on ``env`` (closed afterwards); its final ``info``."""
    agent = _agents("greedy").GreedyAgent(env)
    try:
        obs, info = env.reset(seed=seed, options=options)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            done = terminated or truncated
    finally:
        env.close()
    return info


# ===================================================================================== invert
def invert_greedy(backend: Any, image: np.ndarray, seed: int) -> tuple[str, dict[str, Any]]:
    """Greedy caption-word search on ImageInversion with the image as the target."""
    import gymnasium as gym

    info = greedy_episode(gym.make(INVERT_ID, backend=backend), seed, {"target": image})
    return info["prompt"], {"candidates": info["candidates"]}


def invert_pez(
    backend: Any, images: np.ndarray, seed: int, steps: int, prompt_len: int
) -> tuple[str, dict[str, Any]]:
    """PEZ through the backend's white-box CLIP text encoder, one prompt for ``images``."""
    pez = _agents("pez")
    result = pez.invert(backend, images, prompt_len=prompt_len, steps=steps, seed=seed)
    return result.prompt, {
        "white_box_scorer": pez.white_box(backend).name,
        "text_image_similarity": result.similarity,
        "initial_text_image_similarity": result.initial_similarity,
    }


def invert_reinforce(
    backend: Any, image: np.ndarray, seed: int, steps: int
) -> tuple[str, dict[str, Any]]:
    """A short per-target REINFORCE run (the ImagePrompt learner of ``agents/reinforce.py``).

    Uses that module's candidate-scoring policy, its update and its running baseline on episodes
    whose target is the image; returns the best prompt seen (training or the final greedy one).
    """
    import gymnasium as gym
    import torch

    runs, episodes_, tb = _agents("runs"), _agents("episodes"), _agents("tb")
    reinforce = _agents("reinforce")
    args = reinforce.Args(env_id=INVERT_ID, seed=seed, total_timesteps=steps)
    runs.seed_everything(seed, args.torch_threads)
    venv = gym.make_vec(
        INVERT_ID, num_envs=args.num_envs, vectorization_mode="vector_entry_point", backend=backend
    )
    reinforce.check_spaces(args, venv.single_observation_space, venv.single_action_space)
    model = reinforce.make_model(args, venv.single_observation_space, venv.single_action_space)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    baseline = reinforce.RunningBaseline(args.baseline_decay)
    sample = reinforce.make_policy(model, args.mask_actions, deterministic=False)
    options = {"target": image}
    best: list[dict[str, Any]] = []
    done_steps, update = 0, 0
    progress = bar(steps, "invert reinforce", "step")
    try:
        while done_steps < steps:
            seeds = runs.episode_seeds(seed, update, args.num_envs)
            episodes = episodes_.collect_episodes(venv, sample, seeds, options)
            reinforce.update(args, model, optimizer, baseline, episodes)
            best = tb.top_prompts(best, episodes, k=1)
            length = sum(e.length for e in episodes)
            progress.update(min(length, steps - done_steps))
            done_steps += length
            update += 1
        greedy = reinforce.make_policy(model, args.mask_actions, deterministic=True)
        final = episodes_.collect_episodes(venv, greedy, [seed] * args.num_envs, options)
        best = tb.top_prompts(best, final[:1], k=1)
    finally:
        progress.close()
        venv.close()
    return best[0]["prompt"], {"updates": update, "env_steps": done_steps}


def load_images(paths: list[str]) -> np.ndarray:
    """Several PNG/JPG files of one size as ``uint8 (N, H, W, 3)``.

    Raises:
        ValueError: As :func:`load_image`, or if the images differ in size.
    """
    images = [load_image(p) for p in paths]
    sizes = sorted({im.shape for im in images})
    if len(sizes) > 1:
        raise ValueError(f"the images must have one size to invert together, got {sizes}")
    return np.stack(images)


def cmd_invert(args: argparse.Namespace) -> int:
    """Find a prompt for the images; print it and its similarities, save it and the regenerated image."""
    if args.method not in INVERT_METHODS:
        raise ValueError(f"--method must be one of {INVERT_METHODS}, got {args.method!r}")
    if len(args.image) > 1 and args.method != "pez":
        raise ValueError(
            f"one prompt for several images is PEZ's: use --method pez with {len(args.image)} "
            f"images (--method {args.method} inverts one image)"
        )
    images = load_images(args.image)
    image = images[0]
    backend = _backend(args.backend, INVERT_ID)
    if args.method == "pez":
        _agents("pez").check_backend(backend)  # fail before any work
        prompt, extra = invert_pez(backend, images, args.seed, args.steps or 1000, args.prompt_len)
    elif args.method == "reinforce":
        prompt, extra = invert_reinforce(backend, image, args.seed, args.steps or 2000)
    else:
        prompt, extra = invert_greedy(backend, image, args.seed)
    result = backend.score([prompt], [args.seed], return_images=True)
    similarities = backend.embed_images(images) @ result.image_embeds[0]
    out = Path(args.out) if args.out else Path(args.image[0]).with_suffix(".prompt.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(prompt + "\n", encoding="utf-8")
    png = save_image(result.images[0], out.with_suffix(".png"))
    print(f"prompt: {prompt}")
    several = f", mean over {len(images)} images" if len(images) > 1 else ""
    print(
        f"similarity: {similarities.mean():.4f} (image-image cosine of the regenerated image, "
        f"seed {args.seed}{several})"
    )
    if len(images) > 1:
        for path, sim in zip(args.image, similarities, strict=True):
            print(f"  {path}: {sim:.4f}")
    for key, value in extra.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    print(f"wrote {out} and {png}")
    return 0


# ===================================================================================== distill
def cmd_distill(args: argparse.Namespace) -> int:
    """Shorten a prompt with PEZ; print it, its text similarity and the image similarity kept."""
    if not args.prompt.strip():
        raise ValueError("the prompt is empty")
    backend = _backend(args.backend, INVERT_ID)
    uses = _agents("pez_uses")
    scorer = _agents("pez").check_backend(backend)  # fail before any work
    result = uses.distill(backend, args.prompt, args.tokens, steps=args.steps, seed=args.seed)
    print(f"distilled: {result.prompt}")
    print(f"tokens: {result.tokens} (the prompt has {result.source_tokens}; {scorer.name} tokens)")
    print(f"text similarity: {result.text_similarity:.4f} (cosine of the two text embeddings)")
    print(
        f"image similarity: {result.image_similarity:.4f} vs the prompt's own "
        f"{result.source_similarity:.4f}: {100 * result.fraction:.1f}% kept (renders on "
        f"{len(uses.EVAL_SEEDS)} seeds against the prompt's renders on {len(uses.TARGET_SEEDS)} "
        "others)"
    )
    return 0


# ===================================================================================== rewrite
def rewrite_with_checkpoint(
    prompt: str, checkpoint: str, backend: str | None, seed: int, sample: bool
) -> dict[str, Any]:
    """Rewrite ``prompt`` with an LM-PPO run's policy and score it on the run's env."""
    import torch

    lm_ppo, lm_rollout = _agents("lm_ppo.ppo"), _agents("lm_rollout")
    model, run_args = lm_ppo.load_model(checkpoint)
    kwargs = lm_ppo.env_kwargs(run_args)
    if backend is not None:
        kwargs["backend"] = backend
    probe = lm_rollout.make_venv(run_args.env_id, 1, kwargs)
    kwargs["max_new_tokens"] = lm_rollout.TokenSpace.of(
        probe
    ).max_new  # the longest rewrite allowed
    probe.close()
    venv = lm_rollout.make_venv(run_args.env_id, 1, kwargs)
    try:
        space = lm_rollout.TokenSpace.of(venv)
        torch.manual_seed(seed)
        rewriter = lm_rollout.model_rewriter(model, space, greedy=not sample)
        (episode,) = lm_rollout.run_rewriter(venv, rewriter, [seed], [prompt])
    finally:
        venv.close()
    return episode.info


def rewrite_greedy(prompt: str, backend: str | None, seed: int) -> dict[str, Any]:
    """The greedy modifier search on PromptRewrite (the baseline)."""
    import gymnasium as gym

    import prompt_gym  # noqa: F401

    kwargs = {} if backend is None else {"backend": backend}
    return greedy_episode(gym.make(REWRITE_ID, **kwargs), seed, {"prompt": prompt})


def cmd_rewrite(args: argparse.Namespace) -> int:
    """Print the rewritten prompt and its reward parts."""
    if not args.prompt.strip():
        raise ValueError("the prompt is empty")
    if args.checkpoint:
        info = rewrite_with_checkpoint(
            args.prompt, args.checkpoint, args.backend, args.seed, args.sample
        )
        how = f"LM-PPO policy of {args.checkpoint} ({'sampled' if args.sample else 'greedy decoding'})"
    else:
        info = rewrite_greedy(args.prompt, args.backend, args.seed)
        how = "greedy modifier search (no --checkpoint)"
    print(f"rewrite: {info['prompt']}")
    print(
        f"reward: {info['reward']:.4f} (relevance {info['relevance']:.4f}, "
        f"aesthetic {info['aesthetic']:.4f}; seed {args.seed})"
    )
    print(f"by: {how}")
    return 0


# ===================================================================================== parser
def add_practitioner_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``invert``, ``distill`` and ``rewrite``."""
    inv = sub.add_parser("invert", help="find a prompt that reproduces an image (or several)")
    inv.add_argument(
        "image", nargs="+", help="PNG or JPG files (several, of one size: one prompt for all; PEZ)"
    )
    inv.add_argument("--backend", help=f"backend preset (default: {INVERT_ID}'s, sd-turbo)")
    inv.add_argument("--method", choices=INVERT_METHODS, default="greedy")
    inv.add_argument(
        "--out", help="prompt file (default IMAGE.prompt.txt); the regenerated image goes beside it"
    )
    inv.add_argument(
        "--steps",
        type=positive_int,
        help="PEZ steps (default 1000) or REINFORCE env steps (2000)",
    )
    inv.add_argument("--prompt-len", type=positive_int, default=16, help="PEZ prompt tokens (16)")
    inv.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the search and the regeneration"
    )
    inv.set_defaults(fn=cmd_invert)

    dis = sub.add_parser("distill", help="shorten a prompt to K tokens (PEZ distillation)")
    dis.add_argument("prompt")
    dis.add_argument("--tokens", type=positive_int, required=True, help="tokens of the result")
    dis.add_argument("--backend", help=f"backend preset (default: {INVERT_ID}'s, sd-turbo)")
    dis.add_argument("--steps", type=positive_int, default=300, help="PEZ steps (300)")
    dis.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the search's initial tokens"
    )
    dis.set_defaults(fn=cmd_distill)

    rw = sub.add_parser("rewrite", help="rewrite a prompt for better images")
    rw.add_argument("prompt")
    rw.add_argument("--checkpoint", help="an LM-PPO run directory or checkpoint file")
    rw.add_argument(
        "--backend", help=f"backend preset (default: the run's, or {REWRITE_ID}'s without one)"
    )
    rw.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the images that score it"
    )
    rw.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    rw.set_defaults(fn=cmd_rewrite)
