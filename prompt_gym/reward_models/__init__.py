"""Text-only reward models (BeautifulPrompt): regressors from prompt text to image scores.

BeautifulPrompt distils its image rewards into two text regressors so that RL needs no image
generation: ``AES_rm(y)`` predicts the aesthetic score of ``y``'s images and
``PS_rm(x, y)`` predicts PickScore from ``"Input: x\\nOutput: y"``. Here: the training data
(:mod:`.data`, from a score dataset of :mod:`prompt_gym.export`), the model
(:mod:`.model`, a transformers ``GPT2ForSequenceClassification`` regression head), its training
and held-out metrics (:mod:`.train`). ``prompt-gym train-rm`` is the command line.
"""

from prompt_gym.reward_models.data import TARGETS, rm_examples, rm_text
from prompt_gym.reward_models.model import TextRewardModel

__all__ = ["TARGETS", "TextRewardModel", "rm_examples", "rm_text"]
