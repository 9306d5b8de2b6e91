"""Real-model backends: diffusers generators, open_clip scorers, BLIP captioners.

Importing this package (or any module in it) does not import torch: every heavy import happens
inside a constructor or function. Named presets, their hub ids, sizes and licences are data in
:mod:`prompt_gym.backends.real.presets`; where weights are looked up, and the one error raised when
they are missing, is in :mod:`prompt_gym.backends.real.loading`.

Components (registered in :mod:`prompt_gym.backends.registry`):

========== ============================================ ==========================================
kind       presets                                      class
========== ============================================ ==========================================
generator  ``tiny``, ``sd-turbo``, ``sdxl-turbo``,       :class:`~.diffusion.DiffusersGenerator`
           ``sd15`` (+ ``diffusers``: any hub id / dir)
scorer     ``tiny``, ``clip-b32``, ``clip-l14``          :class:`~.clip.OpenClipScorer`
           (+ ``open_clip``: any architecture / tag)
captioner  ``tiny``, ``blip-base``, ``blip-large``       :class:`~.blip.BlipCaptioner`
           (+ ``blip``: any hub id / dir)
========== ============================================ ==========================================

``tiny`` builds the same classes from tiny random-weight configs, offline and deterministically;
it exercises every line of the real path in tests.
"""

from prompt_gym.backends.real.loading import MODEL_DIR_ENV, ModelNotFoundError

__all__ = ["MODEL_DIR_ENV", "ModelNotFoundError"]
