"""GPT-2 policy, value model and decoding for LM-PPO, in the token env's id space.

The token env (``PromptRewriteTokens-*``) observes ``source ids + [SEP] + continuation`` with
``PAD = vocab_size`` and ``SEP = vocab_size + 1``; its action is the next token id in
``[0, vocab_size)``. The language model therefore has ``vocab_size + 2`` embeddings, and its logits
over the first ``vocab_size`` ids are the action distribution (PAD and SEP are never emitted).
``[SEP]`` plays the role of Promptist's ``" Rephrase:"``.

Model presets (``Args.model``):

* ``tiny``: ``GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2))`` with random weights,
  sized to the env's tokenizer and observation length; offline, for the shapes world and tests;
* ``gpt2`` / ``distilgpt2`` (or a local directory): pretrained weights from the Hugging Face
  cache (``local_files_only`` when ``HF_HUB_OFFLINE=1``), embeddings resized by two; the SEP
  row starts as the mean embedding of ``" Rephrase:"`` (Promptist's template).
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

TINY = "tiny"
HUB_MODELS = ("gpt2", "distilgpt2")


# ===================================================================================== models
def tiny_config(vocab_size: int, n_positions: int) -> Any:
    """The tiny GPT-2 config for an env vocabulary of ``vocab_size`` (plus PAD and SEP)."""
    from transformers import GPT2Config

    return GPT2Config(
        n_layer=2,
        n_embd=64,
        n_head=2,
        vocab_size=vocab_size + 2,
        n_positions=n_positions,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=vocab_size,
    )


def build_policy(name: str, vocab_size: int, n_positions: int, tokenizer: Any = None) -> nn.Module:
    """A ``GPT2LMHeadModel`` for the env vocabulary: the tiny config or pretrained hub weights.

    Args:
        name: ``tiny``, ``gpt2``, ``distilgpt2``, or a local model directory.
        vocab_size: The env's action count (its tokenizer's vocabulary).
        n_positions: Longest sequence the env observes (``source + SEP + continuation``).
        tokenizer: The env's tokenizer (used to initialise the SEP embedding of hub models).

    Raises:
        ValueError: If the pretrained model is not available locally, or its vocabulary does not
            match the env's tokenizer.
    """
    from transformers import GPT2LMHeadModel

    if name == TINY:
        return GPT2LMHeadModel(tiny_config(vocab_size, n_positions))
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    try:
        model = GPT2LMHeadModel.from_pretrained(
            name, local_files_only=offline, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0
        )
    except OSError as err:
        raise ValueError(
            f"language model {name!r} is not available locally ({err.__class__.__name__}); on a "
            f"connected machine run `hf download {name}` and copy the Hugging Face cache "
            "($HF_HOME), pass a local model directory, or use model='tiny'"
        ) from err
    if model.config.vocab_size != vocab_size:
        raise ValueError(
            f"{name!r} has {model.config.vocab_size} tokens but the env's tokenizer has "
            f"{vocab_size}: their ids would not match; use a GPT-2-tokenizer env "
            "(PromptRewriteTokens-v0) with a GPT-2 model, or model='tiny'"
        )
    if n_positions > model.config.n_positions:
        raise ValueError(f"{name!r} takes {model.config.n_positions} positions, need {n_positions}")
    emb = model.get_input_embeddings().weight.data
    sep_init = emb[: model.config.vocab_size].mean(0)
    if tokenizer is not None and hasattr(tokenizer, "encode"):
        ids = [i for i in tokenizer.encode(" Rephrase:") if i < vocab_size]
        if ids:
            sep_init = emb[ids].mean(0)
    eos = getattr(tokenizer, "eos_token_id", vocab_size - 1)
    model.resize_token_embeddings(vocab_size + 2)
    emb = model.get_input_embeddings().weight.data
    emb[vocab_size] = emb[eos]
    emb[vocab_size + 1] = sep_init
    model.config.pad_token_id = vocab_size
    return model


def policy_from_config(config: dict[str, Any]) -> nn.Module:
    """An untrained ``GPT2LMHeadModel`` of a saved config (to load a checkpoint into, offline)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config.from_dict(config))


class ValueModel(nn.Module):
    """A value head on its own GPT-2 body (Promptist keeps policy and value apart).

    Args:
        policy: The LM whose transformer initialises the body (deep-copied).
    """

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.body = copy.deepcopy(policy.transformer)
        self.head = nn.Linear(policy.config.n_embd, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, batch: Batch) -> torch.Tensor:
        """``(B, L)`` value of the state ending at each position."""
        out = self.body(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
        )
        return self.head(out.last_hidden_state).squeeze(-1).float()


def frozen_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy with gradients off (the reference model)."""
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


# ===================================================================================== batches
class Batch:
    """Queries left-padded to a common end, responses right-padded after them.

    Position ``query_len - 1 + t`` of the logits predicts response token ``t``.

    Attributes:
        input_ids: ``(B, Lq + T)``.
        attention_mask: ``(B, Lq + T)``.
        position_ids: ``(B, Lq + T)`` counted from each row's first real token.
        query_len: ``Lq``.
        responses: ``(B, T)`` response ids (0 past each end, so they can index the logits).
        response_mask: ``(B, T)`` float, 1 on response tokens.
    """

    def __init__(
        self,
        queries: Sequence[Sequence[int]],
        responses: Sequence[Sequence[int]],
        pad_id: int,
        device: torch.device | str = "cpu",
    ) -> None:
        n = len(queries)
        lq = max(len(q) for q in queries)
        lr = max([len(r) for r in responses] + [1])
        ids = torch.full((n, lq + lr), pad_id, dtype=torch.long)
        mask = torch.zeros((n, lq + lr), dtype=torch.long)
        for i, (q, r) in enumerate(zip(queries, responses, strict=True)):
            ids[i, lq - len(q) : lq] = torch.as_tensor(list(q), dtype=torch.long)
            mask[i, lq - len(q) : lq] = 1
            if len(r):
                ids[i, lq : lq + len(r)] = torch.as_tensor(list(r), dtype=torch.long)
                mask[i, lq : lq + len(r)] = 1
        self.input_ids = ids.to(device)
        self.attention_mask = mask.to(device)
        self.position_ids = (mask.cumsum(1) - 1).clamp(min=0).to(device)
        self.query_len = lq
        self.response_mask = mask[:, lq:].float().to(device)
        self.responses = self.input_ids[:, lq:].masked_fill(self.response_mask == 0, 0)

    def __len__(self) -> int:
        return len(self.input_ids)

    def select(self, index: torch.Tensor) -> Batch:
        """The rows ``index`` (a minibatch)."""
        out = copy.copy(self)
        for name in ("input_ids", "attention_mask", "position_ids", "responses", "response_mask"):
            setattr(out, name, getattr(self, name)[index])
        return out


def response_logits(model: nn.Module, batch: Batch, vocab_size: int) -> torch.Tensor:
    """``(B, T, vocab_size)`` action logits at each response position."""
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
    ).logits
    t = batch.responses.shape[1]
    return logits[:, batch.query_len - 1 : batch.query_len - 1 + t, :vocab_size]


def response_values(value_model: ValueModel, batch: Batch) -> torch.Tensor:
    """``(B, T)`` value of the state before each response token."""
    values = value_model(batch)
    t = batch.responses.shape[1]
    return values[:, batch.query_len - 1 : batch.query_len - 1 + t]


# ===================================================================================== decoding
def _left_pad(
    queries: Sequence[Sequence[int]], pad_id: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    lq = max(len(q) for q in queries)
    ids = torch.full((len(queries), lq), pad_id, dtype=torch.long)
    mask = torch.zeros((len(queries), lq), dtype=torch.long)
    for i, q in enumerate(queries):
        ids[i, lq - len(q) :] = torch.as_tensor(list(q), dtype=torch.long)
        mask[i, lq - len(q) :] = 1
    return ids.to(device), mask.to(device)


class _Stepper:
    """Feeds one token per row at a time through the LM with a key-value cache."""

    def __init__(self, model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> None:
        self.model, self.mask = model, mask
        # transformers renamed the key-value cache ``past_key_values`` -> ``cache`` (5.x);
        # the old name is deprecated there, so use whichever this version's model takes
        takes_cache = "cache" in inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if takes_cache else "past_key_values"
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(1) - 1).clamp(min=0),
            use_cache=True,
        )
        self.cache, self.logits = self._cache_of(out), out.logits[:, -1].float()

    def _cache_of(self, out: Any) -> Any:
        return out["cache"] if self._cache_kwarg == "cache" else out.past_key_values

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append ``tokens`` ``(B,)``; return the next logits ``(B, V)``."""
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        position = self.mask.sum(1, keepdim=True) - 1
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=self.mask,
            position_ids=position,
            use_cache=True,
            **{self._cache_kwarg: self.cache},
        )
        self.cache, self.logits = self._cache_of(out), out.logits[:, -1].float()
        return self.logits

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` (beam search)."""
        self.cache.reorder_cache(index)
        self.mask, self.logits = self.mask[index], self.logits[index]


@torch.no_grad()
def sample(
    model: nn.Module,
    queries: Sequence[Sequence[int]],
    max_new: Sequence[int],
    vocab_size: int,
    eos_id: int,
    greedy: bool = False,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Sample (or greedily decode) one response per query, as the env would end it.

    A response ends at EOS (included) or after ``max_new[i]`` tokens, exactly where the token env
    ends the episode.
    """
    device = next(model.parameters()).device
    ids, mask = _left_pad(queries, vocab_size, device)
    stepper = _Stepper(model, ids, mask)
    limit = torch.as_tensor(list(max_new), device=device)
    out = torch.zeros((len(queries), int(limit.max())), dtype=torch.long, device=device)
    done = torch.zeros(len(queries), dtype=torch.bool, device=device)
    lengths = torch.zeros(len(queries), dtype=torch.long, device=device)
    logits = stepper.logits
    for t in range(int(limit.max())):
        scores = logits[:, :vocab_size]
        if greedy:
            token = scores.argmax(-1)
        else:
            probs = torch.softmax(scores / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        out[:, t] = token
        lengths += (~done).long()
        done |= (token == eos_id) | (t + 1 >= limit)
        if bool(done.all()):
            break
        logits = stepper.step(token)
    return [out[i, : int(lengths[i])].tolist() for i in range(len(queries))]


@torch.no_grad()
def diverse_beam_search(
    model: nn.Module,
    queries: Sequence[Sequence[int]],
    max_new: Sequence[int],
    vocab_size: int,
    eos_id: int,
    num_beams: int = 8,
    num_beam_groups: int = 8,
    diversity_penalty: float = 1.0,
    length_penalty: float = 1.0,
) -> list[list[list[int]]]:
    """Diverse beam search (Vijayakumar et al. 2016) with Hamming diversity, as Promptist uses.

    The beams of each query are split into ``num_beam_groups`` groups searched one after the other
    at each step; group ``g`` subtracts ``diversity_penalty`` times the number of earlier groups
    that chose a token at this step from that token's log-probability. A finished beam (EOS, or
    ``max_new[i]`` tokens) is carried along unchanged.

    Returns:
        For each query, its ``num_beams`` responses, best (length-normalised score) first.
    """
    if num_beams % num_beam_groups:
        raise ValueError(f"num_beams={num_beams} must be a multiple of num_beam_groups")
    device = next(model.parameters()).device
    n, k = len(queries), num_beams
    per_group = k // num_beam_groups
    ids, mask = _left_pad([q for q in queries for _ in range(k)], vocab_size, device)
    stepper = _Stepper(model, ids, mask)
    limit = torch.as_tensor(list(max_new), device=device).repeat_interleave(k).view(n, k)
    horizon = int(limit.max())
    tokens = torch.zeros((n, k, horizon), dtype=torch.long, device=device)
    lengths = torch.zeros((n, k), dtype=torch.long, device=device)
    done = torch.zeros((n, k), dtype=torch.bool, device=device)
    scores = torch.full((n, k), -1e9, device=device)
    scores[:, ::per_group] = 0.0  # one live beam per group at the start: no duplicates
    logits = stepper.logits
    for t in range(horizon):
        logp = torch.log_softmax(logits[:, :vocab_size], dim=-1).view(n, k, vocab_size)
        # a finished beam has one continuation that keeps it as it is (token id 0, ignored)
        logp = torch.where(done[..., None], torch.full_like(logp, -1e9), logp)
        logp[..., 0] = torch.where(done, torch.zeros_like(logp[..., 0]), logp[..., 0])
        used = torch.zeros((n, vocab_size), device=device)
        origin = torch.empty((n, k), dtype=torch.long, device=device)
        chosen = torch.empty((n, k), dtype=torch.long, device=device)
        new_scores = torch.empty((n, k), device=device)
        for g in range(num_beam_groups):
            sl = slice(g * per_group, (g + 1) * per_group)
            cand = scores[:, sl, None] + logp[:, sl] - diversity_penalty * used[:, None]
            cand = torch.where(done[:, sl, None], scores[:, sl, None] + logp[:, sl], cand)
            _, flat = cand.view(n, -1).topk(per_group, dim=-1)
            beam = flat // vocab_size + g * per_group
            token = flat % vocab_size
            origin[:, sl], chosen[:, sl] = beam, token
            # the diversity penalty only shapes the choice; keep the true log-probabilities
            new_scores[:, sl] = scores.gather(1, beam) + logp.view(n, -1).gather(
                1, beam * vocab_size + token
            )
            live = ~done.gather(1, beam)
            used.scatter_add_(1, token, live.float())
        tokens = tokens.gather(1, origin[..., None].expand(-1, -1, horizon)).clone()
        lengths, was_done = lengths.gather(1, origin), done.gather(1, origin)
        tokens[:, :, t] = torch.where(was_done, tokens[:, :, t], chosen)
        lengths = lengths + (~was_done).long()
        done = was_done | (chosen == eos_id) | (lengths >= limit)
        scores = new_scores
        if bool(done.all()):
            break
        flat_origin = (origin + torch.arange(n, device=device)[:, None] * k).view(-1)
        stepper.reorder(flat_origin)
        logits = stepper.step(torch.where(done, torch.full_like(chosen, eos_id), chosen).view(-1))
    norm = scores / lengths.clamp(min=1).float() ** length_penalty
    order = norm.argsort(dim=1, descending=True)
    return [
        [tokens[i, j, : int(lengths[i, j])].tolist() for j in order[i].tolist()] for i in range(n)
    ]
