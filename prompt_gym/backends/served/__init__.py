"""Served backends: the reward backend as a Ray Serve app that many env workers share.

One process batches all of its envs into one backend call; past one GPU, the backend runs as a
Ray Serve deployment, one replica per GPU (a CPU per replica for ``shapes`` / ``tiny``), and env
workers anywhere in the cluster call it through a ``DeploymentHandle``:

* :func:`serve_backend` (``make_backend(NAME, service="ray", replicas=N)``, or the CLI's
  ``prompt-gym serve NAME --replicas N``) deploys a preset as the app ``APP`` (default: the
  preset name); each replica holds one in-process
  :class:`~prompt_gym.backends.reward_backend.RewardBackend` (:mod:`.replica`,
  :mod:`.deployment`);
* :func:`connect` (``make_backend("ray://APP")``, or ``backend="ray://APP"`` in any env's
  kwargs) returns a plain :class:`~prompt_gym.backends.reward_backend.RewardBackend` whose
  components and compute are clients of the app (:mod:`.components`): its dedupe and memory
  cache sit in front, each batch of misses is one round trip, and ``@serve.batch`` merges the
  round trips of many callers into one batch per replica (deduplicated there). It pickles as a
  :class:`ServedSpec`, which reconnects to the same app by name, so ``AsyncVectorEnv`` workers
  (``context="spawn"``) and Ray actors reach the same service.

Results are the in-process backend's, bit for bit (the replica runs the same code; tested on
the shapes world). Nothing here imports ``ray`` until it is used; without the ``ray`` extra a
served path raises one ``ValueError`` that says how to install it.
"""

from prompt_gym.backends.served.backend import ServedSpec, connect
from prompt_gym.backends.served.connection import ServiceUnavailableError
from prompt_gym.backends.served.deploy import SERVICE_OPTIONS, deploy, serve_backend

SCHEME = "ray://"
"""Backend names that start with this name a running Serve app: ``"ray://APP"``."""

__all__ = [
    "SCHEME",
    "SERVICE_OPTIONS",
    "ServedSpec",
    "ServiceUnavailableError",
    "connect",
    "deploy",
    "serve_backend",
]
