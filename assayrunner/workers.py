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
    queue = deque(range(len(items)))
    workers = [_Worker(context, work, items) for _ in range(max(1, min(jobs, len(items))))]
    try:
        while True:
            for worker in workers:
                while len(worker.tasks) < AHEAD and queue:
                    worker.give(queue.popleft())
            busy = [w for w in workers if w.tasks]
            if not busy:
                return
            deadline = min(w.started + timeout for w in busy)
            waiting = max(0.0, deadline - time.monotonic())
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                             timeout=waiting if tick is None else min(waiting, tick)))
            if not ready and tick is not None:
                yield None
            for k, worker in enumerate(workers):
                if not worker.tasks:
                    continue
                done = worker.collect(timeout, worker.conn in ready, worker.process.sentinel in ready)
                if done is None:
                    continue
                if isinstance(done[1], Failure) and not worker.process.is_alive():
                    queue.extendleft(reversed(worker.tasks))  # its waiting items go to another worker
                    worker.stop()
                    workers[k] = _Worker(context, work, items)
                yield done
    finally:
        for worker in workers:
            worker.stop()
        gc.unfreeze()


#: Items a worker holds: the one it computes and the next.
AHEAD = 2


class _Worker:
    """One process and the pipe to it; `tasks` are the indexes of the items it holds, the first in the works
    since `started`. The process gets the whole item list when it starts (a forked one shares it, a spawned
    one receives it once), so a task is sent as its index alone."""

    def __init__(self, context, work: Callable[[object], object], items: list):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, work, items), daemon=True)
        self.process.start()
        child.close()
        self.tasks: deque[int] = deque()
        self.started = 0.0

    def give(self, index: int) -> None:
        try:
            self.conn.send(index)
        except OSError:  # the process died (its pipe is closed): the next wait finds it ended
            pass
        if not self.tasks:
            self.started = time.monotonic()
        self.tasks.append(index)

    def collect(self, timeout: float, readable: bool, ended: bool) -> tuple[int, object] | None:
        """(index, reply) when the first task ended (done, died or overran), else None. `readable` and `ended`:
        whether the last wait found the pipe readable and the process's sentinel set."""
        index = self.tasks[0]
        if readable:
            try:
                got, reply = self.conn.recv()
            except (EOFError, OSError):
                self.process.join(1)
                got, reply = index, self._died()
            self._next()
            return got, reply
        if ended and not self.process.is_alive():
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


def _serve(conn, work: Callable[[object], object], items: list) -> None:
    """The worker's loop: receive an index, send (index, work(items[index])); None ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            index = conn.recv()
        except (EOFError, OSError):
            return
        if index is None:
            return
        try:
            reply = work(items[index])
        except BaseException as exc:  # SystemExit from a plugin too: it fails this item, not the worker
            reply = Failure(3, f"internal error: {format_traceback(exc)}")
        try:
            conn.send((index, reply))
        except Exception as exc:  # e.g. a result that cannot be pickled
            conn.send((index, Failure(3, f"internal error: the result could not be passed back: {exc}")))
