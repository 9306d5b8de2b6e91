"""Worker processes that generate and score part of each batch on the machine's other cores.

``make_backend("shapes", workers=2)`` renders and scores every large enough batch of cache misses
in two processes: this one and one worker. Each worker is a fresh Python process
(``python -m prompt_gym.backends.worker_main``) that receives a pickled copy of the backend's
generator and scorer once, then answers requests over its standard input and output. So:

* results are the same bits as in one process (every image depends only on its own prompt and
  seed), and the caches, deduplication and scene reuse stay in the calling process;
* workers start on the first batch that uses them, and stop when the backend is closed or
  garbage-collected, or when this process exits (their input closes);
* plain subprocesses rather than :mod:`multiprocessing`, so a backend with workers also runs
  inside the daemonic workers of ``AsyncVectorEnv`` and SB3's ``SubprocVecEnv``, and no
  ``if __name__ == "__main__"`` guard is needed in the calling script.

Workers suit CPU backends such as the shapes world, whose components are small to copy. A batch
is split over the processes so that none waits for another (:meth:`WorkerPool.compute`), with
at least :data:`MIN_IMAGES_PER_PROCESS` images each; smaller batches are computed here, since a
round trip to a worker costs more than it saves. Images are not sent back: a backend that keeps
images, or a call that asks for them, computes here. A worker replies with the embeddings, then
computes and sends the aesthetic scores while the caller goes on; the caller reads them when a
result's ``aesthetic`` is read (its own share is computed then, so both processes score at once)
or, if nobody does, just before the worker's next reply. While batches come back to back, the
processes poll their pipes for a moment instead of sleeping (:class:`_Waiter`), because waking
a sleeping process costs about as much as the round trip itself on a virtual machine.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import select
import struct
import subprocess
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from typing import IO, Any, NoReturn

import numpy as np

MIN_IMAGES_PER_PROCESS = 16
"""A batch is shared only so that every process gets at least this many images."""

_HEADER = struct.Struct("<Q")
_SHARE_STEP, _SHARE_MIN, _SHARE_MAX = 0.01, 0.1, 0.9
_POLL_SECONDS = 1e-3  # a worker polls for requests that come within this of its last reply
_POLLING = os.name == "posix"  # where select() takes pipes
_WAIT_SECONDS = 20e-6  # without polling, a longer wait for a reply's first bytes is waiting

Computed = tuple[np.ndarray, np.ndarray | Callable[[], np.ndarray], np.ndarray]
"""``(embeds, aesthetic scores or a function returning them, flags)`` of a batch."""


class WorkerError(RuntimeError):
    """A worker process failed; the message carries its traceback."""


def _write(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:  # an unbuffered stream may take part of it
        view = view[stream.write(view) or 0 :]
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, fewer only if the stream closed (an unbuffered pipe returns what it has)."""
    data = stream.read(size) or b""
    while 0 < len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _read(stream: IO[bytes], head: bytes | None = None) -> Any | None:
    """The next message (whose header may have been read), or ``None`` if the stream closed."""
    head = _read_exactly(stream, _HEADER.size) if head is None else head
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = _read_exactly(stream, size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def _readable(fd: int) -> bool:
    """Whether a read of pipe ``fd`` would return at once (POSIX ``select``)."""
    return bool(select.select([fd], [], [], 0)[0])


def split_points(n: int, processes: int, share: float | None = None) -> list[int]:
    """Boundaries of ``n`` images split over at most ``processes`` processes.

    The first part (this process's) is ``share`` of the batch (default: an even split), the
    rest is split evenly; every part has at least :data:`MIN_IMAGES_PER_PROCESS` images, so a
    small batch uses fewer processes.

    >>> split_points(64, 2), split_points(15, 2), split_points(50, 3), split_points(64, 2, 0.6)
    ([0, 32, 64], [0, 15], [0, 17, 34, 50], [0, 38, 64])
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

    def __init__(self, generator: Any, scorer: Any, has_aesthetic: bool, poll: bool) -> None:
        self.poll = poll
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prompt_gym.backends.worker_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: select() on the pipe then sees every byte not yet read
        )
        self.busy = False
        self.waited = False
        self.later: _Aesthetic | None = None
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        try:
            components = pickle.dumps((generator, scorer, has_aesthetic), pickle.HIGHEST_PROTOCOL)
            _write(self.stdin, ("init", list(sys.path), components, poll))
        except Exception as exc:
            self.close()
            raise WorkerError(
                f"could not hand the generator and scorer to a worker process: {exc!r}; "
                "workers need picklable components (use workers=1 otherwise)"
            ) from exc
        try:
            self._reply()  # "ready", or the error that stopped it
        except BaseException:
            self.close()
            raise

    def send(self, prompts: list[str], seeds: list[int]) -> None:
        try:
            _write(self.stdin, ("score", prompts, seeds))
        except OSError:  # its end of the pipe is closed: the worker is gone
            self._exited()
        self.busy = True

    def receive(self) -> tuple[np.ndarray, np.ndarray, _Aesthetic]:
        """The embeddings and flags of the batch sent, and its aesthetic scores to come.

        The previous batch's aesthetic scores, if nobody read them, come first in the pipe: the
        worker sent them before it read this request, so neither side waits for the other.
        """
        self.collect()
        embeds, flags = self._reply(timed=True)
        self.busy = False  # its aesthetic scores follow, whether or not they are read
        self.later = _Aesthetic(self)
        return embeds, flags, self.later

    def collect(self) -> None:
        """Read the aesthetic scores the worker sent after its last reply, if not read yet."""
        later, self.later = self.later, None
        if later is None:
            return
        later.worker = None
        try:
            (later.value,) = self._reply()
        except WorkerError as exc:
            later.error = exc
        except (OSError, ValueError) as exc:  # the pipe was closed here
            later.error = WorkerError(f"the worker's aesthetic scores were lost: {exc!r}")

    def _reply(self, timed: bool = False) -> Any:
        start = time.perf_counter()
        if self.poll:  # this process has nothing else to do: poll rather than sleep and wake
            fd, stop = self.stdout.fileno(), start + _POLL_SECONDS * 50
            ready = _readable(fd)
            if timed:
                self.waited = not ready  # the reply was not there yet
            while not ready and time.perf_counter() < stop:
                ready = _readable(fd)
            head = _read_exactly(self.stdout, _HEADER.size)
        else:
            head = _read_exactly(self.stdout, _HEADER.size)
            if timed:
                self.waited = time.perf_counter() - start > _WAIT_SECONDS
        reply = _read(self.stdout, head)
        if reply is None:
            self.busy = False
            self._exited()
        if reply[0] == "error":
            self.busy = False
            raise WorkerError(f"a backend worker process failed:\n{reply[1]}")
        return reply[1:]

    def _exited(self) -> NoReturn:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)
        code = self.process.returncode
        raise WorkerError(f"a backend worker process exited unexpectedly (exit code {code})")

    def close(self) -> None:
        with contextlib.suppress(Exception):  # keep scores already sent readable
            if self.later is not None and self.process.poll() is None:
                self.collect()
        for stream in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Aesthetic:
    """A worker's aesthetic scores of one batch: they follow its embeddings in a second message.

    Calling it returns them, reading the message first if nobody has (the next reply from the
    worker reads it otherwise, so the scores stay available after later batches).

    Raises:
        WorkerError: When called, if the worker failed to compute or send them.
    """

    def __init__(self, worker: _Worker) -> None:
        self.worker: _Worker | None = worker
        self.value: np.ndarray | None = None
        self.error: WorkerError | None = None

    def __call__(self) -> np.ndarray:
        if self.worker is not None:
            self.worker.collect()
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


def _close_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.close()
    workers.clear()


class WorkerPool:
    """Worker processes that share batches of cache misses with the calling process.

    Args:
        generator: The backend's generator (copied to every worker once, by pickling).
        scorer: The backend's scorer (likewise).
        has_aesthetic: Whether the scorer has aesthetic scores.
        workers: Worker processes to start (the calling process works too).

    Raises:
        WorkerError: If a worker cannot be started or cannot receive the components.
    """

    def __init__(self, generator: Any, scorer: Any, has_aesthetic: bool, workers: int) -> None:
        self._workers: list[_Worker] = []
        self.share = 1.0 / (1 + workers)
        """This process's share of a batch (adapted by :meth:`compute`)."""
        self._finalizer = weakref.finalize(self, _close_all, self._workers)
        try:
            # poll for replies and requests only with a core for every process
            poll = _POLLING and 1 + workers <= (os.cpu_count() or 1)
            for _ in range(workers):
                self._workers.append(_Worker(generator, scorer, has_aesthetic, poll))
        except BaseException:
            self.close()
            raise

    def compute(
        self,
        prompts: list[str],
        seeds: list[int],
        here: Callable[[list[str], list[int]], Computed],
    ) -> tuple[Computed, int]:
        """Compute a batch, the first part with ``here`` and the rest in the workers.

        Returns what ``here`` returns for the whole batch, in request order (the aesthetic
        scores stay deferred when ``here`` defers them), and how many images the workers made.
        Workers send their embeddings first and their aesthetic scores after them, so that
        deferred scores are computed in every process at once, when they are read.

        This process's share adapts so that nobody waits: it grows a step when this process
        had to wait for a worker's reply, and shrinks a step when every reply was there (a round
        trip to a worker costs about 0.2 ms on a 2-core machine, so an even split is rarely
        the fastest). Which process computes an image never changes its bits.
        """
        points = split_points(len(prompts), 1 + len(self._workers), self.share)
        used = self._workers[: len(points) - 2]
        try:
            for worker, a, b in zip(used, points[1:-1], points[2:], strict=True):
                worker.send(prompts[a:b], seeds[a:b])
            embeds, aes, flags = here(prompts[: points[1]], seeds[: points[1]])
            replies = [worker.receive() for worker in used]
        finally:
            for worker in used:  # an error here leaves no reply unread for the next batch
                if worker.busy:
                    with contextlib.suppress(WorkerError):
                        worker.receive()
        waited = any(worker.waited for worker in used)
        step = _SHARE_STEP if waited else -_SHARE_STEP
        self.share = min(_SHARE_MAX, max(_SHARE_MIN, self.share + step))
        embeds = np.concatenate([embeds, *(r[0] for r in replies)])
        flags = np.concatenate([flags, *(r[1] for r in replies)])
        later = [r[2] for r in replies]
        made = len(prompts) - points[1]
        if callable(aes):
            local = aes
            return (embeds, lambda: np.concatenate([local(), *(f() for f in later)]), flags), made
        return (embeds, np.concatenate([aes, *(f() for f in later)]), flags), made

    def close(self) -> None:
        """Stop the workers (they also stop when this process exits)."""
        self._finalizer()


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The worker loop: build a backend from the first message, then answer score requests."""
    from prompt_gym.backends.reward_backend import RewardBackend

    message = _read(inp)
    if message is None:
        return
    try:
        _, path, components, poll = message
        _extend_path(path)  # so that the components' classes import as they do here
        generator, scorer, has_aesthetic = pickle.loads(components)
        backend = RewardBackend(generator, scorer, None, memory_cache_size=0)  # type: ignore[arg-type]
        backend.has_aesthetic = has_aesthetic
        _write(out, ("ready",))
    except Exception:
        _write(out, ("error", traceback.format_exc()))
        return
    wait = _Waiter(inp, poll)
    while (message := wait.read()) is not None:
        try:
            _, prompts, seeds = message
            (embeds, aes, flags), _ = backend._compute_here(prompts, seeds)
            _write(out, ("ok", embeds, flags))
        except Exception:
            _write(out, ("error", traceback.format_exc()))
            continue
        try:  # then the aesthetic scores, while the caller works on the embeddings
            _write(out, ("ok", np.asarray(aes() if callable(aes) else aes, dtype=np.float32)))
        except Exception:
            _write(out, ("error", traceback.format_exc()))


class _Waiter:
    """Reads a worker's requests, polling briefly first when they come back to back.

    A process that blocks on a pipe is descheduled, and waking it costs a good part of a round
    trip (about 0.1 ms on a 2-core virtual machine). When the previous request came within
    :data:`_POLL_SECONDS` of the reply before it, as in a training loop that steps its envs
    without pause, the worker polls for up to twice that gap before blocking; after a longer
    pause it blocks at once, so an idle worker costs no CPU. The calling process likewise polls
    for a reply it waits for (it has nothing else to do). Both poll only where ``select`` takes
    pipes and there is a core for every process.
    """

    def __init__(self, stream: IO[bytes], poll: bool) -> None:
        self.stream = stream
        self.gap = math.inf
        self.poll = poll

    def read(self) -> Any | None:
        start = time.perf_counter()
        if self.poll and self.gap < _POLL_SECONDS:
            fd, stop = self.stream.fileno(), start + 2 * self.gap
            while not _readable(fd) and time.perf_counter() < stop:
                pass
        message = _read(self.stream)
        self.gap = time.perf_counter() - start
        return message


def serve_stdio() -> None:
    """Run a worker on this process's stdin and stdout (anything printed goes to stderr)."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, out)


def _extend_path(path: Sequence[str]) -> None:
    for entry in path:
        if entry not in sys.path:
            sys.path.append(entry)
