"""Worker processes that generate and score part of a batch on the machine's other cores.

A :class:`WorkerPool` starts ``workers`` fresh Python processes
(``python -m prompt_gym.backends.worker_main``). Each receives a pickled copy of the generator
and scorer once, then answers requests over its standard input and output: a request is
``(prompts, seeds, aesthetic)``, the reply the embeddings, the aesthetic scores (or ``None``)
and the failure flags, computed by :func:`~prompt_gym.backends.compute.generate_and_score`,
the function the calling process runs on its own part. So:

* results are the same bits as in one process (every image depends only on its own prompt and
  seed);
* workers stop when the pool is closed or garbage-collected, or when the calling process exits
  (their input closes);
* plain subprocesses rather than :mod:`multiprocessing`, so a backend with workers also runs
  inside the daemonic workers of ``AsyncVectorEnv`` and SB3's ``SubprocVecEnv``, and no
  ``if __name__ == "__main__"`` guard is needed in the calling script.

A batch is split by :func:`split_points`, with at least :data:`MIN_IMAGES_PER_PROCESS` images
per process; the caller's share adapts (:class:`~prompt_gym.backends.parallel.ComputePool`). Images are not sent back.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from typing import IO, Any, NoReturn

import numpy as np

from prompt_gym.backends.compute import generate_and_score

MIN_IMAGES_PER_PROCESS = 16
"""A batch is shared only so that every process gets at least this many images."""

_HEADER = struct.Struct("<Q")

Reply = tuple[np.ndarray, np.ndarray | None, np.ndarray]
"""A worker's ``(embeds, aesthetic scores or None, flags)`` of its part of a batch."""


class WorkerError(RuntimeError):
    """A worker process failed; the message carries its traceback."""


def _write(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, fewer only if the stream closed."""
    data = stream.read(size) or b""
    while 0 < len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _read(stream: IO[bytes]) -> Any | None:
    """The next message, or ``None`` if the stream closed."""
    head = _read_exactly(stream, _HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = _read_exactly(stream, size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def split_points(n: int, processes: int, share: float | None = None) -> list[int]:
    """Boundaries of ``n`` images split over at most ``processes`` processes.

    The first part (this process's) is ``share`` of the batch and the others split the rest
    evenly (default: an even split). Every part has at least :data:`MIN_IMAGES_PER_PROCESS`
    images, so a small batch uses fewer processes.

    >>> split_points(64, 2), split_points(15, 2), split_points(50, 3), split_points(64, 2, 0.25)
    ([0, 32, 64], [0, 15], [0, 17, 34, 50], [0, 16, 64])
    """
    k = max(1, min(processes, n // MIN_IMAGES_PER_PROCESS))
    if k == 1:
        return [0, n]
    share = 1.0 / k if share is None else share
    first = min(max(round(n * share), MIN_IMAGES_PER_PROCESS), n - (k - 1) * MIN_IMAGES_PER_PROCESS)
    size, extra = divmod(n - first, k - 1)
    points = [0, first]
    for i in range(k - 1):
        points.append(points[-1] + size + (i < extra))
    return points


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, components: bytes) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prompt_gym.backends.worker_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.busy = False
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        try:
            _write(self.stdin, (list(sys.path), components))
            self._reply()  # "ready", or the error that stopped it
        except BaseException:
            self.close()
            raise

    def send(self, prompts: list[str], seeds: list[int], aesthetic: bool) -> None:
        try:
            _write(self.stdin, (prompts, seeds, aesthetic))
        except OSError:  # its end of the pipe is closed: the worker is gone
            self._exited()
        self.busy = True

    def receive(self) -> Reply:
        """The scores of the part sent last."""
        self.busy = False
        return self._reply()

    def _reply(self) -> Any:
        reply = _read(self.stdout)
        if reply is None:
            self._exited()
        if reply[0] == "error":
            raise WorkerError(f"a backend worker process failed:\n{reply[1]}")
        return reply[1:]

    def _exited(self) -> NoReturn:
        self.busy = False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)
        code = self.process.returncode
        raise WorkerError(f"a backend worker process exited unexpectedly (exit code {code})")

    def close(self) -> None:
        for stream in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _close_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.close()
    workers.clear()


class WorkerPool:
    """Worker processes that compute parts of batches for the calling process.

    Args:
        generator: The generator (copied to every worker once, by pickling).
        scorer: The scorer (likewise).
        workers: Worker processes to start.

    Raises:
        WorkerError: If a worker cannot be started or cannot receive the components.
    """

    def __init__(self, generator: Any, scorer: Any, workers: int) -> None:
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _close_all, self._workers)
        try:
            components = pickle.dumps((generator, scorer), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise WorkerError(
                f"could not hand the generator and scorer to a worker process: {exc!r}; "
                "workers need picklable components (use workers=1 otherwise)"
            ) from exc
        try:
            for _ in range(workers):
                self._workers.append(_Worker(components))
        except BaseException:
            self.close()
            raise

    def map(
        self,
        parts: list[tuple[list[str], list[int]]],
        aesthetic: bool,
        here: Callable[[list[str], list[int]], Any],
    ) -> tuple[Any, list[Reply], float]:
        """Compute ``parts[0]`` with ``here`` while the workers compute the others.

        Returns:
            What ``here`` returned, the workers' replies in part order, and the seconds this
            process waited for them after its own part.
        """
        used = self._workers[: len(parts) - 1]
        try:
            for worker, (prompts, seeds) in zip(used, parts[1:], strict=True):
                worker.send(prompts, seeds, aesthetic)
            mine = here(*parts[0])
            done = time.perf_counter()
            replies = [worker.receive() for worker in used]
            waited = time.perf_counter() - done
        finally:
            for worker in used:  # an error here leaves no reply unread for the next batch
                if worker.busy:
                    with contextlib.suppress(WorkerError):
                        worker.receive()
        return mine, replies, waited

    def close(self) -> None:
        """Stop the workers (they also stop when this process exits)."""
        self._finalizer()


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The worker loop: unpickle the components, then answer requests until input closes."""
    message = _read(inp)
    if message is None:
        return
    try:
        path, components = message
        _extend_path(path)  # so that the components' classes import as they do here
        generator, scorer = pickle.loads(components)
        _write(out, ("ready",))
    except Exception:
        _write(out, ("error", traceback.format_exc()))
        return
    while (message := _read(inp)) is not None:
        try:
            prompts, seeds, aesthetic = message
            done = generate_and_score(generator, scorer, prompts, seeds, aesthetic)
            _write(out, ("ok", done.embeds, done.aesthetic, done.flags))
        except Exception:
            _write(out, ("error", traceback.format_exc()))


def serve_stdio() -> None:
    """Run a worker on this process's stdin and stdout (anything printed goes to stderr)."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, out)


def _extend_path(path: Sequence[str]) -> None:
    for entry in path:
        if entry not in sys.path:
            sys.path.append(entry)
