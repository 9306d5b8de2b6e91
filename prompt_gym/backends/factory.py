"""``make_backend``: the one place a backend preset name becomes a :class:`RewardBackend`.

The factory also records how it built a backend, as a :class:`BackendSpec` (the preset name and
the overrides) in ``backend.spec``: a backend pickles as its spec, so a copy (sent to an
``AsyncVectorEnv`` worker, say) is rebuilt from the preset with empty caches and its own
worker processes.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prompt_gym.backends.protocols import Target
from prompt_gym.backends.registry import BACKENDS, resolve
from prompt_gym.backends.reward_backend import RewardBackend
from prompt_gym.export.recorder import Recorder

_BACKEND_OPTIONS = ("cache_dir", "memory_cache_size", "keep_images", "workers", "worker_timeout_s")


class LazyCaptioner:
    """A captioner built on its first use.

    Only ImageInversion captions (to build its prompt spaces); the rewrite envs never do, so a
    backend does not load BLIP (about 1 GB) until an env asks for captions, and a machine that
    lacks the captioner's weights can still run the rewrite envs. A missing captioner raises its
    :class:`~prompt_gym.backends.real.loading.ModelNotFoundError` at that first use (an
    ImageInversion ``reset``), before any image is generated.

    Args:
        build: Makes the captioner.
    """

    def __init__(self, build: Any) -> None:
        self._build = build
        self._captioner: Any = None

    @property
    def loaded(self) -> bool:
        """Whether the captioner has been built."""
        return self._captioner is not None

    def caption(self, targets: Sequence[Target], n: int, seed: int = 0) -> list[list[str]]:
        """``n`` captions per target from the underlying captioner (built now if needed)."""
        if self._captioner is None:
            self._captioner = self._build()
        return self._captioner.caption(targets, n, seed)


@dataclass(frozen=True)
class BackendSpec:
    """How :func:`make_backend` built a backend: calling the spec builds it again.

    Attributes:
        name: The preset name.
        overrides: The keyword overrides, as passed.

    >>> BackendSpec("shapes", {"resolution": 32})().generator.resolution
    32
    """

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> RewardBackend:
        """A new backend of this preset and these overrides (empty caches)."""
        return make_backend(self.name, **self.overrides)


def _accepted(factory: Any) -> set[str] | None:
    """Keyword names a factory accepts, or ``None`` if it takes ``**kwargs``."""
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def make_backend(name: str = "shapes", **overrides: Any) -> RewardBackend:
    """Build the reward backend for preset ``name``.

    Overrides are routed by name: ``cache_dir``, ``memory_cache_size``, ``keep_images`` and
    ``workers`` go to the :class:`RewardBackend`; ``record=PATH`` (a dataset directory, or a
    :class:`~prompt_gym.export.recorder.Recorder`) logs every scored request as Parquet;
    ``generator=``, ``scorer=``, ``captioner=`` swap a component preset; ``generator_kwargs=`` / ``scorer_kwargs=`` / ``captioner_kwargs=``
    pass options to one component; any other keyword goes to every component whose factory
    accepts it (``resolution=128`` reaches the generator).

    Served backends (:mod:`prompt_gym.backends.served`, the ``ray`` extra): ``service="ray"``
    (with ``replicas=N``, ``app=``, ``max_batch_size=``, ...) deploys the preset as a Ray Serve
    app and returns a backend that calls it; ``name="ray://APP"`` connects to a running one.

    Args:
        name: A preset from :data:`prompt_gym.backends.registry.BACKENDS`, or ``"ray://APP"``.
        **overrides: See above.

    Raises:
        ValueError: For an unknown preset or a keyword that no component accepts.

    Example:
        >>> backend = make_backend("shapes", resolution=32)
        >>> backend.score(["red circle"], [0]).image_embeds.shape[0]
        1
    """
    if name.startswith("ray://"):
        from prompt_gym.backends.served import connect

        return connect(name.removeprefix("ray://"), **overrides)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known backends: {sorted(BACKENDS)}")
    if "service" in overrides:
        from prompt_gym.backends.served import SERVICE_OPTIONS, serve_backend

        service = {k: overrides.pop(k) for k in SERVICE_OPTIONS if k in overrides}
        return serve_backend(BackendSpec(name, overrides), **service)
    preset = BACKENDS[name]
    saved = dict(overrides)
    options = {k: overrides.pop(k) for k in _BACKEND_OPTIONS if k in overrides}
    record = overrides.pop("record", None)
    if record is not None:
        options["record"] = record if isinstance(record, Recorder) else Recorder(record)
    names = {
        "generator": overrides.pop("generator", preset.generator),
        "scorer": overrides.pop("scorer", preset.scorer),
        "captioner": overrides.pop("captioner", preset.captioner),
    }
    kwargs: dict[str, dict[str, Any]] = {
        kind: dict(overrides.pop(f"{kind}_kwargs", None) or {}) for kind in names
    }
    factories = {kind: resolve(kind, component) for kind, component in names.items()}
    for key, value in overrides.items():
        takers = [
            kind for kind, f in factories.items() if (acc := _accepted(f)) is None or key in acc
        ]
        if not takers:
            raise ValueError(
                f"backend {name!r} has no option {key!r}; the generator, scorer and captioner "
                f"accept {sorted(set().union(*(_accepted(f) or set() for f in factories.values())))}"
            )
        for kind in takers:
            kwargs[kind].setdefault(key, value)
    captioner = LazyCaptioner(lambda: factories["captioner"](**kwargs["captioner"]))
    backend = RewardBackend(
        factories["generator"](**kwargs["generator"]),
        factories["scorer"](**kwargs["scorer"]),
        captioner,
        name=name,
        version=preset.version,
        world=preset.world,
        **options,
    )
    backend.spec = BackendSpec(name, saved)
    return backend


_SHARED: dict[tuple[str, str], RewardBackend] = {}


def shared_backend(name: str, **overrides: Any) -> RewardBackend:
    """Return this process's backend for ``(name, overrides)``, building it on first use.

    Envs made by name share one backend (its models and caches), so ``check_env`` and
    ``make_vec`` do not load a model per env.
    """
    key = (name, repr(sorted(overrides.items())))
    if key not in _SHARED:
        _SHARED[key] = make_backend(name, **overrides)
    return _SHARED[key]
