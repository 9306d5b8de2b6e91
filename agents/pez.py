"""PEZ: hard prompts by gradient descent through the CLIP text encoder (Wen et al. 2023).

A white-box baseline for image inversion. ``prompt_len`` soft token embeddings ``P`` are
optimised with AdamW to minimise ``1 - cos(text(P'), image)``, where ``P'`` is ``P`` projected
onto the nearest vocabulary embeddings (cosine) at every step; the loss and its gradient are
computed **at the projected embeddings** and the gradient is applied to the soft ones. The
result is a projected (hard) prompt decoded to text, with its similarity measured the way a user
meets it: the decoded text re-tokenised and embedded by the scorer. Decoding can merge tokens, so
among the projected prompts that set a new best during the search, the one whose decoded text
scores best is returned.

Which model PEZ differentiates through (:func:`white_box`): the backend's own scorer when it is
an open_clip model (:class:`~prompt_gym.backends.real.clip.OpenClipScorer`: the real presets,
``tiny``, ``shapes-clip``); otherwise the differentiable proxy the backend's preset declares in
:data:`prompt_gym.backends.registry.DIFFERENTIABLE_PROXIES`. The ``shapes`` and ``shapes-v3``
presets, whose procedural scorer has no gradients, declare ``shapes-clip`` (a small CLIP trained
on the shapes world, :mod:`prompt_gym.backends.shapes.clip_model`): PEZ then optimises against
the proxy's text tower and the proxy's embeddings of the target images (a white-box proxy, as a
real PEZ user optimises through one CLIP and generates with a diffusion model), and whatever
scores the result afterwards (an env's reward, ``prompt-gym invert``'s similarity) is the
backend's own scorer. On shapes-clip the projection vocabulary is its compact vocabulary (the
245 BPE tokens of the shapes world's words), not CLIP's 49,406 tokens.

Prompt distillation, concatenation and one prompt for several images:
:mod:`~prompt_gym.agents.pez_uses`.

Example::

    from prompt_gym import make_backend
    from prompt_gym.agents import pez
    backend = make_backend("shapes")          # PEZ through shapes-clip, scored procedurally
    result = pez.invert(backend, images, steps=300)
    print(result.prompt, result.similarity)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prompt_gym.agents.checkpoints import reject_checkpoint
from prompt_gym.agents.episodes import Episode

from prompt_gym.backends import RewardBackend
from prompt_gym.progress import advance

AGENT = "pez"


@dataclass
class PEZResult:
    """What :func:`search` found.

    Attributes:
        prompt: The best hard prompt, decoded.
        similarity: Mean cosine of ``prompt``'s text embedding (re-tokenised, as the white-box
            scorer embeds it) to the target embeddings (of the images; for distillation, of the
            prompt being distilled).
        initial_prompt: The random prompt the search started from, decoded.
        initial_similarity: The same measure for ``initial_prompt``.
        token_ids: Token ids of the projected prompt ``prompt`` was decoded from.
        history: ``(step, projected-prompt cosine)`` at every step.
    """

    prompt: str
    similarity: float
    initial_prompt: str
    initial_similarity: float
    token_ids: list[int]
    history: list[tuple[int, float]] = field(default_factory=list)


@cache
def _proxy(name: str) -> Any:
    from prompt_gym.backends.registry import resolve

    return resolve("scorer", name)()


def white_box(backend: RewardBackend) -> Any:
    """The open_clip scorer PEZ differentiates through for ``backend`` (see the module docstring).

    Raises:
        ValueError: If the backend's scorer is not open_clip and its preset declares no
            differentiable proxy.
    """
    from prompt_gym.backends.real.clip import OpenClipScorer
    from prompt_gym.backends.registry import DIFFERENTIABLE_PROXIES

    if isinstance(backend.scorer, OpenClipScorer):
        return backend.scorer
    if backend.name not in DIFFERENTIABLE_PROXIES:
        raise ValueError(
            f"PEZ needs a differentiable scorer (an open_clip model) or a declared proxy; backend "
            f"{backend.name!r} has {type(backend.scorer).__name__} and no entry in "
            "DIFFERENTIABLE_PROXIES. Use greedy or reinforce instead"
        )
    return _proxy(DIFFERENTIABLE_PROXIES[backend.name])


def check_backend(backend: RewardBackend) -> Any:
    """:func:`white_box`, checked for a text pooling PEZ supports.

    Raises:
        ValueError: As :func:`white_box`, or for a text tower PEZ cannot feed embeddings to.
    """
    scorer = white_box(backend)
    pooling = scorer.clip.text_pool_type
    if pooling not in ("argmax", "eos"):
        raise ValueError(f"PEZ supports argmax/eos text pooling, not {pooling!r}")
    return scorer


def _encode(clip: Any, embeds: torch.Tensor, ids: torch.Tensor, eot_index: int) -> torch.Tensor:
    """open_clip's ``encode_text`` from token embeddings: ``(B, P, d) -> (B, D)`` unit vectors."""
    cast = clip.transformer.get_cast_dtype()
    x = clip.token_embedding(ids).to(cast)
    x = torch.cat([x[:, :1], embeds.to(cast), x[:, 1 + embeds.shape[1] :]], dim=1)
    x = x + clip.positional_embedding.to(cast)
    x = clip.transformer(x, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)[:, eot_index]
    proj = clip.text_projection
    x = proj(x) if isinstance(proj, torch.nn.Module) else x @ proj
    return torch.nn.functional.normalize(x.float(), dim=-1)


def invert(
    backend: RewardBackend,
    images: np.ndarray,
    prompt_len: int = 16,
    steps: int = 1000,
    learning_rate: float = 0.1,
    weight_decay: float = 0.1,
    seed: int = 0,
) -> PEZResult:
    """Find a hard prompt whose CLIP text embedding matches the target images (PEZ, Alg. 1).

    With several images their mean cosine is maximised: one prompt for several images (PEZ's
    style / multi-image inversion).

    Args:
        backend: A backend with an open_clip scorer or a declared proxy (:func:`white_box`).
        images: ``uint8 (N, H, W, 3)`` target images.
        prompt_len: Number of prompt tokens (PEZ: 16).
        steps: Optimisation steps (PEZ: 3000).
        learning_rate: AdamW learning rate (PEZ: 0.1).
        weight_decay: AdamW weight decay (PEZ: 0.1).
        seed: Seed of the random initial tokens.

    Raises:
        ValueError: For a scorer without gradients, bad sizes, or images of the wrong type.
    """
    scorer = check_backend(backend)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    target = scorer.embed_images(images)
    return search(scorer, target, prompt_len, steps, learning_rate, weight_decay, seed)


def search(
    scorer: Any,
    target: np.ndarray,
    prompt_len: int = 16,
    steps: int = 1000,
    learning_rate: float = 0.1,
    weight_decay: float = 0.1,
    seed: int = 0,
) -> PEZResult:
    """PEZ's optimiser: the hard prompt whose text embedding has the largest mean cosine to the
    rows of ``target`` (``float (M, D)`` unit vectors: image embeddings, or a text's).

    Args:
        scorer: An open_clip scorer (:func:`white_box`).
        target: The embeddings to match, in the scorer's space.
        prompt_len: Number of prompt tokens.
        steps: Optimisation steps.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        seed: Seed of the random initial tokens.

    Raises:
        ValueError: For bad sizes.
    """
    clip, tokenizer = scorer.clip, scorer.tokenizer
    context = int(clip.positional_embedding.shape[0])
    if not 1 <= prompt_len <= context - 2 or steps < 1:
        raise ValueError(f"prompt_len must be in [1, {context - 2}] and steps >= 1")
    sot, eot = tokenizer.sot_token_id, tokenizer.eot_token_id
    device = clip.token_embedding.weight.device
    vocab = clip.token_embedding.weight.detach()[: min(sot, eot)].float()  # no special tokens
    unit_vocab = torch.nn.functional.normalize(vocab, dim=-1)
    target_t = torch.as_tensor(np.asarray(target), device=device).float()

    def template(prompt_ids: torch.Tensor) -> torch.Tensor:
        ids = torch.zeros((1, context), dtype=torch.long, device=device)
        ids[0, 0], ids[0, 1 : 1 + prompt_len], ids[0, 1 + prompt_len] = sot, prompt_ids, eot
        return ids

    def text_similarity(texts: list[str]) -> np.ndarray:
        return (scorer.embed_texts(texts) @ target_t.cpu().numpy().T).mean(axis=1)

    gen = torch.Generator().manual_seed(seed)
    init_ids = torch.randint(len(vocab), (prompt_len,), generator=gen).to(device)
    soft = vocab[init_ids].clone().requires_grad_(True)
    optimizer = torch.optim.AdamW([soft], lr=learning_rate, weight_decay=weight_decay)
    best_cos, history, improved = -2.0, [], []
    for step in range(steps):
        with torch.no_grad():  # nearest-neighbour projection onto the vocabulary
            proj_ids = (torch.nn.functional.normalize(soft, dim=-1) @ unit_vocab.T).argmax(-1)
        hard = vocab[proj_ids].clone().requires_grad_(True)
        text = _encode(clip, hard[None], template(proj_ids), 1 + prompt_len)
        cos = (text @ target_t.T).mean()
        (grad,) = torch.autograd.grad(1.0 - cos, [hard])
        soft.grad = grad.to(soft.dtype)  # the gradient at the projection updates the soft prompt
        optimizer.step()
        optimizer.zero_grad()
        history.append((step, cos.item()))
        if cos.item() > best_cos:
            best_cos = cos.item()
            improved.append(proj_ids.tolist())
    # decoding and re-tokenising can change the ids: keep the improvement that survives it best
    texts = [decode(tokenizer, ids) for ids in improved]
    sims = text_similarity(texts)
    best = int(sims.argmax())
    initial = decode(tokenizer, init_ids.tolist())
    return PEZResult(
        prompt=texts[best],
        similarity=float(sims[best]),
        initial_prompt=initial,
        initial_similarity=float(text_similarity([initial])[0]),
        token_ids=improved[best],
        history=history,
    )


def decode(tokenizer: Any, ids: list[int]) -> str:
    """Text of open_clip token ids, whitespace normalised."""
    return " ".join(tokenizer.decode(ids).split())


def evaluate(
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    steps: int = 300,
    prompt_len: int = 16,
    *,
    checkpoint: str | Path | None = None,
) -> list[Episode]:
    """PEZ on ImageInversion episodes, scored like the env scores a prompt (``imageprompt-i2i``).

    Episode ``i`` is reset with seed ``seed + i`` (its target and image seeds come from the env);
    PEZ inverts the target through :func:`white_box`, and the prompt is rendered on the
    episode's seeds and compared with the target by the env's own scorer (on the Shapes ids the
    procedural one, while PEZ optimised through shapes-clip). PEZ's prompt is free text, outside
    the env's candidate-token actions, so each episode is one step whose reward is that
    similarity.

    Raises:
        ValueError: For an id of another family, or a backend without a white-box scorer.
    """
    import gymnasium as gym

    reject_checkpoint(checkpoint, AGENT)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if not str(gym.spec(env_id).entry_point).endswith(":ImageInversionEnv"):
        raise ValueError(f"PEZ inverts images: use an ImageInversion id, not {env_id}")
    env = gym.make(env_id, **(env_kwargs or {}))
    u = env.unwrapped
    try:
        check_backend(u.backend)
        out = []
        for i in range(episodes):
            env.reset(seed=seed + i, options=options)
            found = invert(u.backend, u.target.image[None], prompt_len, steps, seed=seed + i)
            similarity = u.evaluate_prompt(found.prompt)
            info = {
                "prompt": found.prompt,
                "similarity": similarity,
                "text_similarity": found.similarity,
                "target_id": u.target.target_id,
            }
            out.append(
                Episode(
                    obs={},
                    actions=np.zeros(1, dtype=np.int64),
                    rewards=np.array([similarity]),
                    info=info,
                    seed=seed + i,
                )
            )
            advance()
        return out
    finally:
        env.close()
