"""Without the ``ray`` extra: ``import prompt_gym`` and every in-process path work, and a served
path raises one ``ValueError`` that says how to install it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["ray"] = None  # `import ray` raises ImportError, as without the extra

    import gymnasium as gym
    import prompt_gym
    from prompt_gym.backends import make_backend
    from prompt_gym.backends.served.cli import cmd_serve  # the CLI module imports without ray

    assert make_backend("shapes").score(["a red circle"], [0]).valid.all()
    for env_id in ("ImageInversion-Shapes-v0", "PromptRewrite-Shapes-v0"):
        env = gym.make(env_id)
        env.reset(seed=0)
        env.step(int(env.unwrapped.action_masks().nonzero()[0][0]))
    for name, kwargs in (("shapes", {"service": "ray", "replicas": 2}), ("ray://shapes", {})):
        try:
            make_backend(name, **kwargs)
        except ValueError as err:
            print("ERR", err)
        else:
            raise AssertionError("no error")
    assert not any(m == "ray" or m.startswith("ray.") for m in sys.modules if sys.modules[m])
    """
)


def test_without_ray_everything_else_works_and_served_paths_say_how_to_install() -> None:
    run = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    errors = [line for line in run.stdout.splitlines() if line.startswith("ERR")]
    assert len(errors) == 2
    for line in errors:
        assert "pip install 'prompt-gym[ray]'" in line
