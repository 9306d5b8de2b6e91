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
  ``if __name__ == "__main__"`` guard is needed in the calling script;
* a worker that dies (killed, crashed) costs nothing but time: its part of the batch is computed
  in the calling process (the same bits) and a new worker is started for the next batch, at
  most :data:`MAX_RESTARTS` times per pool, with a warning each time; past that, the pool
  computes everything in the calling process, with one warning;
* a worker that does not answer within ``timeout_s`` (stopped, hung) raises
  :class:`WorkerError` naming its pid; it is killed and replaced on the next batch (a restart).
  An error raised by the components inside a worker is raised here with its traceback.

A batch is split by :func:`split_points`, with at least :data:`MIN_IMAGES_PER_PROCESS` images
per process; the caller's share adapts (:class:`~prompt_gym.backends.parallel.ComputePool`). Images are not sent back.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import subprocess
import sys
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import IO, Any, NoReturn

import numpy as np

from prompt_gym.backends.compute import generate_and_score

MIN_IMAGES_PER_PROCESS = 16
"""A batch is shared only so that every process gets at least this many images."""

MAX_RESTARTS = 3
"""Dead workers a pool replaces; past that it computes every batch in the calling process."""

TIMEOUT_S = 300.0
"""Default seconds to wait for a worker's reply before giving up on it."""

_HEADER = struct.Struct("<Q")

Reply = tuple[np.ndarray, np.ndarray | None, np.ndarray]
"""A worker's ``(embeds, aesthetic scores or None, flags)`` of its part of a batch."""


class WorkerError(RuntimeError):
    """A worker process failed; the message carries its traceback."""


class WorkerExitedError(WorkerError):
    """A worker process is gone (killed or crashed): its work can be done elsewhere."""


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
    """One worker process and its pipes (non-blocking on this side, so every wait is bounded)."""

    def __init__(self, components: bytes, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prompt_gym.backends.worker_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.busy = False
        self.reported = False  # whether the pool has warned that it is gone
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        self._in, self._out = self.stdin.fileno(), self.stdout.fileno()
        for fd in (self._in, self._out):
            os.set_blocking(fd, False)
        try:
            self._send((list(sys.path), components))
            self._reply()  # "ready", or the error that stopped it
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, prompts: list[str], seeds: list[int], aesthetic: bool) -> None:
        self._send((prompts, seeds, aesthetic))
        self.busy = True

    def receive(self) -> Reply:
        """The scores of the part sent last."""
        self.busy = False
        return self._reply()

    def _send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_HEADER.pack(len(data)) + data)
        deadline = time.monotonic() + self.timeout_s
        while view:
            self._wait(select_write=True, deadline=deadline)
            try:
                view = view[os.write(self._in, view) :]
            except BlockingIOError:
                continue
            except OSError:  # its end of the pipe is closed: the worker is gone
                self._exited()

    def _receive_exactly(self, size: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < size:
            self._wait(select_write=False, deadline=deadline)
            try:
                chunk = os.read(self._out, size - len(data))
            except BlockingIOError:
                continue
            except OSError:
                self._exited()
            if not chunk:
                self._exited()
            data += chunk
        return bytes(data)

    def _wait(self, *, select_write: bool, deadline: float) -> None:
        fd = self._in if select_write else self._out
        left = deadline - time.monotonic()
        ready = left > 0 and any(
            select.select([], [fd], [], left) if select_write else select.select([fd], [], [], left)
        )
        if not ready:
            self.kill()
            raise WorkerError(
                f"backend worker process {self.pid} did not answer within {self.timeout_s:g} s "
                "(stopped or hung); it was killed and is replaced on the next batch; raise "
                "worker_timeout_s if its batches really take that long"
            )

    def _reply(self) -> Any:
        deadline = time.monotonic() + self.timeout_s
        (size,) = _HEADER.unpack(self._receive_exactly(_HEADER.size, deadline))
        reply = pickle.loads(self._receive_exactly(size, deadline))
        if reply[0] == "error":
            raise WorkerError(f"a backend worker process failed:\n{reply[1]}")
        return reply[1:]

    def _exited(self) -> NoReturn:
        self.busy = False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)
        code = self.process.returncode
        raise WorkerExitedError(
            f"backend worker process {self.pid} exited unexpectedly (exit code {code})"
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Stop the process now (a stopped or hung one too); the error raised says so."""
        self.busy, self.reported = False, True
        with contextlib.suppress(OSError):
            self.process.kill()
        self.close()

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
        timeout_s: Seconds to wait for a worker's reply (or start) before raising.

    Raises:
        WorkerError: If a worker cannot be started or cannot receive the components.
    """

    def __init__(
        self, generator: Any, scorer: Any, workers: int, timeout_s: float = TIMEOUT_S
    ) -> None:
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _close_all, self._workers)
        self.timeout_s = timeout_s
        self.restarts = 0
        """Dead workers replaced so far (at most :data:`MAX_RESTARTS`)."""
        self.size = workers
        try:
            self._components = pickle.dumps((generator, scorer), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise WorkerError(
                f"could not hand the generator and scorer to a worker process: {exc!r}; "
                "workers need picklable components (use workers=1 otherwise)"
            ) from exc
        try:
            for _ in range(workers):
                self._workers.append(_Worker(self._components, timeout_s))
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

        The part of a worker that is gone (or cannot be replaced) is computed with ``here``
        too, so a dead worker changes no result.

        Returns:
            What ``here`` returned, the workers' replies in part order (tuples of ``here``'s
            result's ``embeds``, ``aesthetic`` and ``flags`` for parts computed here), and the
            seconds this process waited for them after its own part.

        Raises:
            WorkerError: If the components raise in a worker, or a worker does not answer
                within ``timeout_s``.
        """
        workers = [self._ready(i) for i in range(len(parts) - 1)]
        replies: list[Reply | None] = [None] * len(workers)
        try:
            for k, (worker, (prompts, seeds)) in enumerate(zip(workers, parts[1:], strict=True)):
                if worker is not None and not self._send(worker, prompts, seeds, aesthetic):
                    workers[k] = None
            mine = here(*parts[0])
            done = time.perf_counter()
            for k, worker in enumerate(workers):
                if worker is not None:
                    replies[k] = self._receive(worker)
            waited = time.perf_counter() - done
        finally:
            for worker in workers:  # an error here leaves no reply unread for the next batch
                if worker is not None and worker.busy:
                    with contextlib.suppress(WorkerError):
                        worker.receive()
        for k, reply in enumerate(replies):
            if reply is None:  # its worker is gone: compute its part here, the same bits
                again = here(*parts[k + 1])
                replies[k] = (again.embeds, again.aesthetic, again.flags)
        return mine, replies, waited  # type: ignore[return-value]

    def _send(self, worker: _Worker, prompts: list[str], seeds: list[int], aes: bool) -> bool:
        """Send a part; ``False`` if the worker is gone."""
        try:
            worker.send(prompts, seeds, aes)
        except WorkerExitedError as exc:
            self._report(worker, f"{exc}; its part of the batch was computed in this process")
            return False
        return True

    def _receive(self, worker: _Worker) -> Reply | None:
        """A worker's reply; ``None`` if the worker is gone."""
        try:
            return worker.receive()
        except WorkerExitedError as exc:
            self._report(worker, f"{exc}; its part of the batch was computed in this process")
            return None

    def _report(self, worker: _Worker, what: str) -> None:
        """Warn, once per dead worker, of its death and of what happens next."""
        worker.reported = True
        left = MAX_RESTARTS - self.restarts
        then = (
            f"a new worker takes its place ({left} restart{'s' * (left != 1)} left)"
            if left
            else "from now on this pool computes every batch in the calling process"
        )
        warnings.warn(f"{what}; {then}", RuntimeWarning, stacklevel=6)

    def _ready(self, i: int) -> _Worker | None:
        """Worker ``i``, started again if it is gone and restarts are left, else ``None``."""
        worker = self._workers[i]
        if worker.alive():
            return worker
        if not worker.reported:
            code = worker.process.returncode
            self._report(worker, f"backend worker process {worker.pid} exited (exit code {code})")
        worker.close()
        if self.restarts >= MAX_RESTARTS:
            return None
        self.restarts += 1
        self._workers[i] = _Worker(self._components, self.timeout_s)
        return self._workers[i]

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
