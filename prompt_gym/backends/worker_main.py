"""Entry point of a backend worker process (see :mod:`prompt_gym.backends.workers`)."""

from prompt_gym.backends.workers import serve_stdio

if __name__ == "__main__":
    serve_stdio()
