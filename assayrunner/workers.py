"""Worker processes for a batch: each computes one item at a time. A worker that dies (an abort in a library,
out of memory) or overruns the time limit fails only its own item and is replaced; the rest go on."""

from __future__ import annotations

import gc
import multiprocessing as mp
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait

from .plugins import format_traceback


@dataclass(frozen=True)
class Failure:
    """An item that produced no result: the exit code it stands for (2 user-fixable, 3 internal) and why."""

    exit_code: int
    message: str


def run(work: Callable[[object], object], items: list, jobs: int, timeout: float,
        start_method: str | None = None, tick: float | None = None) -> Iterator[tuple[int, object] | None]:
    """Yield (index, work(item) or Failure) as each item finishes, computed by up to `jobs` processes; with
    `tick`, also None after each `tick` seconds without one (a caller holding a lock can let it go).

    work must be a module-level function (spawned workers import it); an exception it raises becomes a
    Failure of that item. Each worker holds its next item while it computes one (no idle gap while the
    caller stores a result); results come in the order they finish. Workers are forked on Linux (they
    inherit the loaded plugins), spawned elsewhere.
    """
    context = mp.get_context(start_method or ("fork" if sys.platform == "linux" else "spawn"))
    gc.freeze()  # what the workers inherit is never scanned by their collector (nor copied on write for it)
    queue = deque(enumerate(items))
    workers = [_Worker(context, work) for _ in range(max(1, min(jobs, len(items))))]
    try:
        while True:
            for worker in workers:
                while len(worker.tasks) < AHEAD and queue:
                    worker.give(*queue.popleft())
            busy = [w for w in workers if w.tasks]
            if not busy:
                return
            deadline = min(w.started + timeout for w in busy)
            waiting = max(0.0, deadline - time.monotonic())
            if not wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                        timeout=waiting if tick is None else min(waiting, tick)) and tick is not None:
                yield None
            for k, worker in enumerate(workers):
                while worker.tasks:
                    done = worker.collect(timeout)
                    if done is None:
                        break
                    if isinstance(done[1], Failure) and not worker.process.is_alive():
                        queue.extendleft(reversed(worker.tasks))  # its waiting items go to another worker
                        worker.stop()
                        workers[k] = _Worker(context, work)
                        yield done
                        break
                    yield done
    finally:
        for worker in workers:
            worker.stop()
        gc.unfreeze()


#: Items a worker holds: the one it computes and the next.
AHEAD = 2


class _Worker:
    """One process and the pipe to it; `tasks` are the (index, item) it holds, the first in the works since
    `started`."""

    def __init__(self, context, work: Callable[[object], object]):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, work), daemon=True)
        self.process.start()
        child.close()
        self.tasks: deque[tuple[int, object]] = deque()
        self.started = 0.0

    def give(self, index: int, item: object) -> None:
        self.conn.send((index, item))
        if not self.tasks:
            self.started = time.monotonic()
        self.tasks.append((index, item))

    def collect(self, timeout: float) -> tuple[int, object] | None:
        """(index, reply) when the first task ended (done, died or overran), else None."""
        index = self.tasks[0][0]
        if self.conn.poll():
            try:
                got, reply = self.conn.recv()
            except (EOFError, OSError):
                self.process.join(1)
                got, reply = index, self._died()
            self._next()
            return got, reply
        if not self.process.is_alive():
            self._next()
            return index, self._died()
        if time.monotonic() - self.started > timeout:
            self.process.kill()
            self.process.join()
            self._next()
            return index, Failure(3, f"stopped after {timeout:g} s (the per-file time limit, --timeout)")
        return None

    def _next(self) -> None:
        self.tasks.popleft()
        self.started = time.monotonic()

    def _died(self) -> Failure:
        return Failure(3, f"the worker process died ({_how(self.process.exitcode)}); nothing was stored for this file")

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(2)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self.conn.close()


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"killed by {name}" + (", perhaps out of memory" if name == "SIGKILL" else "")
    return f"exit code {exitcode}"


def _serve(conn, work: Callable[[object], object]) -> None:
    """The worker's loop: receive (index, item), send (index, result); None ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, item = task
        try:
            reply = work(item)
        except BaseException as exc:  # SystemExit from a plugin too: it fails this item, not the worker
            reply = Failure(3, f"internal error: {format_traceback(exc)}")
        try:
            conn.send((index, reply))
        except Exception as exc:  # e.g. a result that cannot be pickled
            conn.send((index, Failure(3, f"internal error: the result could not be passed back: {exc}")))
