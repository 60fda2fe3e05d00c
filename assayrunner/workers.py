"""Worker processes for a batch: each computes one item at a time and, given a `store`, stores what it computed
itself, in groups. A worker that dies (an abort in a library, out of memory) or overruns the time limit fails
only the item it was computing and is replaced; what it had computed but not stored is computed again by
another; the rest go on."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Protocol

from .plugins import format_traceback


@dataclass(frozen=True)
class Failure:
    """An item that produced no result: the exit code it stands for (2 user-fixable, 3 internal) and why."""

    exit_code: int
    message: str


#: A worker stores what it computed in groups (one commit, and its fsync, for up to GROUP_RUNS items), at the
#: latest once the first item of a group is GROUP_SECONDS old, even while it computes the next (where a thread
#: can signal the main thread: not on Windows), and when it has nothing more to do.
GROUP_RUNS, GROUP_SECONDS = 64, 0.25

#: Items a worker holds: the one it computes and the next.
AHEAD = 2

#: Seconds a stopped worker (Ctrl-C) has to store what it computed before it is killed.
STOP_SECONDS = 2.0

# The messages a worker sends: an item's final reply; an item computed and held for storing; a store begun
# (the time limit does not apply to it); the replies of a group about to be committed and the key to find it by
# (if the worker dies before it says "stored", the parent asks `committed(key)`); a group stored.
DONE, HELD, STORING, COMMITTING, STORED = range(5)

#: The message that asks a worker to store what it holds now (the parent has nothing more for it).
FLUSH = -1


class Store(Protocol):
    """How a worker stores its results (the object is pickled to a spawned worker)."""

    def save(self, group: list[tuple[int, object]],
             committing: Callable[[object, list[tuple[int, object]]], None]) -> list[tuple[int, object]]:
        """In the worker: store [(index, result)] and return each index's final reply; call
        `committing(key, replies)` just before the commit."""

    def committed(self, key: object) -> bool:
        """In the parent, after a worker died between `committing` and its reply: whether that commit happened."""

    def close(self) -> None:
        """In the worker, when it ends."""


def run(work: Callable[[object], object], items: list, jobs: int, timeout: float, start_method: str | None = None,
        store: Store | None = None) -> Iterator[tuple[int, object]]:
    """Pool(...).replies(): see Pool."""
    return Pool(work, items, jobs, timeout, start_method, store).replies()


class Pool:
    """Up to `jobs` processes computing work(item) for every item; with `store`, each stores what it computed.

    work must be a module-level function (spawned workers import it); an exception it raises becomes a Failure
    of that item. Each worker holds its next item while it computes one. Workers are forked on Linux (they
    inherit the loaded plugins), spawned elsewhere."""

    def __init__(self, work: Callable[[object], object], items: list, jobs: int, timeout: float,
                 start_method: str | None = None, store: Store | None = None):
        self.context = mp.get_context(start_method or ("fork" if sys.platform == "linux" else "spawn"))
        self.work, self.items, self.timeout, self.store = work, items, timeout, store
        self.jobs = max(1, min(jobs, len(items)))
        self.queue = deque(range(len(items)))
        self.retried: Counter[int] = Counter()  # items requeued after a worker died storing them
        self.workers: list[_Worker] = []
        self.interrupted = self.waiting = False

    def replies(self) -> Iterator[tuple[int, object]]:
        """Yield (index, reply) as each item's reply is final: work(item), a Failure, or (with `store`) what
        store.save made of work(item), in the order they are final.

        Ctrl-C (SIGINT, in the main thread) stops the batch: `interrupted` is set, each worker is asked to store
        what it computed and end, the replies it sends within STOP_SECONDS are yielded, and the iterator ends.
        A second Ctrl-C kills the workers at once."""
        gc.freeze()  # what the workers inherit is never scanned by their collector (nor copied on write for it)
        caught = _catch_interrupt(self)
        try:
            self.workers = [self._start() for _ in range(self.jobs)]
            try:
                while not self.interrupted:
                    for worker in self.workers:
                        while len(worker.tasks) < AHEAD and self.queue:
                            worker.give(self.queue.popleft())
                        if worker.held and not worker.tasks and not self.queue and not worker.flushing:
                            worker.flush()
                    busy = [w for w in self.workers if w.tasks or w.held]
                    if not busy:
                        return
                    yield from self._step(busy)
            except _Interrupt:
                self.interrupted = True
            caught = _release_interrupt(caught)  # a second Ctrl-C stops the stopping
            yield from self._stop_all()
        finally:
            _release_interrupt(caught)
            self._kill_all()
            gc.unfreeze()

    def _start(self) -> _Worker:
        return _Worker(self.context, self.work, self.items, self.store)

    def _step(self, busy: list[_Worker]) -> Iterator[tuple[int, object]]:
        timed = [w.started + self.timeout for w in busy if w.tasks and not w.storing]
        waiting = max(0.0, min(timed) - time.monotonic()) if timed else None
        self.waiting = True  # Ctrl-C raises only here, where no message is half read
        try:
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=waiting))
        finally:
            self.waiting = False
        for k, worker in enumerate(self.workers):
            if worker not in busy:
                continue
            if worker.process.sentinel in ready and not worker.process.is_alive():
                yield from self._replace(k, worker)
                continue
            yield from worker.read(worker.conn in ready)
            if worker.gone:
                yield from self._replace(k, worker)
            elif worker.tasks and not worker.storing and time.monotonic() - worker.started > self.timeout:
                yield from worker.read(True)  # what it sent before it is killed
                if worker.tasks and not worker.storing:
                    worker.process.kill()
                    yield from self._replace(k, worker, timed_out=True)

    def _replace(self, k: int, worker: _Worker, timed_out: bool = False) -> Iterator[tuple[int, object]]:
        """A worker ended: its group's replies if the commit it announced happened, a Failure for the item it was
        computing; the rest back to the queue (an item whose storing killed a worker twice fails)."""
        worker.process.join()
        yield from worker.read_remaining()
        yield from self._recover(worker)
        if worker.tasks and not worker.storing:
            yield worker.tasks.popleft(), Failure(
                3, f"stopped after {self.timeout:g} s (the per-file time limit, --timeout)") if timed_out \
                else worker.died()
        requeue = [*sorted(worker.held), *worker.tasks]
        if worker.storing:
            for index in sorted(worker.held):
                self.retried[index] += 1
                if self.retried[index] > 1:
                    requeue.remove(index)
                    yield index, Failure(3, f"the worker process died while storing this run ({worker.how()}); "
                                            "it was not stored")
        self.queue.extendleft(reversed(requeue))
        worker.close()
        self.workers[k] = self._start()

    def _recover(self, worker: _Worker) -> Iterator[tuple[int, object]]:
        """The replies of the group the worker was committing when it died, if the commit happened; if that cannot
        be told, each of its runs fails saying so (computing it again might store it twice)."""
        if worker.committing is None:
            return
        key, replies = worker.committing
        worker.committing = None
        try:
            final = self.store.committed(key)
        except Exception as exc:
            unknown = Failure(3, f"the worker process died while storing this run ({worker.how()}), and whether it "
                                 f"was stored cannot be told ({exc}); look for it with `assayrun runs`")
            replies, final = [(index, unknown) for index, _ in replies], True
        if final:
            worker.held.difference_update(i for i, _ in replies)
            yield from replies

    def _stop_all(self) -> Iterator[tuple[int, object]]:
        """Ask every worker to store what it holds and end; take its replies for STOP_SECONDS, then kill it."""
        for worker in self.workers:
            worker.send(None)
        deadline = time.monotonic() + STOP_SECONDS
        live = list(self.workers)
        while live and time.monotonic() < deadline:
            ready = set(wait([w.conn for w in live] + [w.process.sentinel for w in live],
                             timeout=max(0.0, deadline - time.monotonic())))
            for worker in live:
                if worker.process.sentinel not in ready:
                    yield from worker.read(worker.conn in ready)
            live = [w for w in live if not w.gone and w.process.is_alive()]
        for worker in self.workers:
            worker.process.kill()
            worker.process.join()
            yield from worker.read_remaining()
            yield from self._recover(worker)

    def _kill_all(self) -> None:
        """Every worker ended (None asks an idle one to end; a busy one is killed after STOP_SECONDS)."""
        for worker in self.workers:
            if worker.process.is_alive():
                worker.send(None)
                worker.process.join(STOP_SECONDS if not worker.tasks else 0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.close()
        self.workers = []


class _Interrupt(Exception):
    """Ctrl-C while the pool waits for its workers."""


def _catch_interrupt(pool: Pool) -> tuple | None:
    """SIGINT while the pool runs: raised (as _Interrupt) only while it waits, otherwise noted and acted on at
    its next step. Returns (the handler it replaced,), or None where signals cannot be handled (not the main
    thread)."""
    def handler(signum, frame):
        pool.interrupted = True
        if pool.waiting:
            raise _Interrupt
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # as a command started in the background has it
        return None
    try:
        return (signal.signal(signal.SIGINT, handler),)
    except ValueError:
        return None


def _release_interrupt(caught: tuple | None) -> None:
    """Put back the SIGINT handler _catch_interrupt replaced; returns None (nothing left to put back)."""
    if caught is not None:
        signal.signal(signal.SIGINT, caught[0])


class _Worker:
    """One process and the pipe to it, as the parent sees it: `tasks`, the indexes of the items it holds to
    compute (the first in the works since `started`); `held`, those it computed and holds to store; `storing`
    while it stores a group; `committing`, the key and replies of a group it is committing. The process gets the
    whole item list when it starts (a forked one shares it, a spawned one receives it once), so a task is sent
    as its index alone."""

    def __init__(self, context, work, items: list, store):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, work, items, store), daemon=True)
        self.process.start()
        child.close()
        self.tasks: deque[int] = deque()
        self.held: set[int] = set()
        self.storing = self.flushing = self.gone = False
        self.committing: tuple[object, list] | None = None
        self.started = 0.0

    def send(self, message) -> bool:
        try:
            self.conn.send(message)
            return True
        except OSError:  # the process died (its pipe is closed): the next wait finds it ended
            return False

    def give(self, index: int) -> None:
        self.send(index)
        if not self.tasks:
            self.started = time.monotonic()
        self.tasks.append(index)

    def flush(self) -> None:
        self.flushing = self.send(FLUSH)

    def read(self, readable: bool) -> Iterator[tuple[int, object]]:
        """The final replies among the messages waiting in the pipe; `gone` once it is closed."""
        while readable and not self.gone:
            try:
                if not self.conn.poll():
                    return
                message = self.conn.recv()
            except (EOFError, OSError):
                self.gone = True
                return
            kind = message[0]
            if kind == DONE or kind == HELD:
                index = self.tasks.popleft()
                self.started = time.monotonic()
                if kind == DONE:
                    yield index, message[1]
                else:
                    self.held.add(index)
            elif kind == STORING:
                self.storing = True
            elif kind == COMMITTING:
                self.committing = message[1], message[2]
            else:  # STORED
                self.storing = self.flushing = False
                self.committing = None
                self.started = time.monotonic()  # the time limit is the item's, not the store's
                self.held.difference_update(i for i, _ in message[1])
                yield from message[1]

    def read_remaining(self) -> Iterator[tuple[int, object]]:
        """read() once the process has ended, the pipe made non-blocking first: a message its death cut off ends
        the reading (the pipe's other end may stay open in other workers, so it would never end otherwise)."""
        try:
            os.set_blocking(self.conn.fileno(), False)
        except (OSError, AttributeError):  # not a file descriptor (Windows): a cut-off message is not expected
            pass
        yield from self.read(True)

    def died(self) -> Failure:
        return Failure(3, f"the worker process died ({self.how()}); nothing was stored for this file")

    def how(self) -> str:
        exitcode = self.process.exitcode
        if exitcode is not None and exitcode < 0:
            name = signal.Signals(-exitcode).name
            return f"killed by {name}" + (", perhaps out of memory" if name == "SIGKILL" else "")
        return f"exit code {exitcode}"

    def close(self) -> None:
        self.conn.close()


def _serve(conn, work: Callable[[object], object], items: list, store: Store | None) -> None:
    """The worker's loop: receive an index, compute its item; send the reply (DONE), or hold the result (HELD)
    and store the held ones in groups. FLUSH stores what it holds; None stores it and ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    holder = _Holder(conn, store)
    parent = mp.parent_process()
    while True:
        try:
            # the parent killed: its end of the pipe stays open in this process and the later-forked ones, so
            # only its sentinel says so (what this worker holds is not stored: no one would report it)
            if parent is not None and conn not in wait([conn, parent.sentinel]):
                return
            index = conn.recv()
        except (EOFError, OSError):
            return
        if index is None or index == FLUSH:
            holder.flush()
            if index is None:
                if store is not None:
                    store.close()
                return
            continue
        holder.computing = True
        try:
            reply = work(items[index])
        except BaseException as exc:  # SystemExit from a plugin too: it fails this item, not the worker
            reply = Failure(3, f"internal error: {format_traceback(exc)}")
        finally:
            holder.computing = False
        if store is None or isinstance(reply, Failure):
            _send_done(conn, reply)
        else:
            holder.hold(index, reply)


def _send_done(conn, reply: object) -> None:
    try:
        conn.send((DONE, reply))
    except Exception as exc:  # e.g. a result that cannot be pickled
        conn.send((DONE, Failure(3, f"internal error: the result could not be passed back: {exc}")))


class _Holder:
    """A worker's computed results not yet stored, and their storing: in groups of GROUP_RUNS, or once the first
    is GROUP_SECONDS old. While an item is computed, a watch thread has the main thread store the group when it
    comes of age (SIGUSR1, whose handler stores it only while the item is computed: the compute pauses for it,
    as for any signal handler, and the pipe is not in use meanwhile). The read time limit (bounds.deadline) has
    SIGALRM and the interval timer to itself."""

    def __init__(self, conn, store: Store | None):
        self.conn, self.store = conn, store
        self.held: list[tuple[int, object]] = []
        self.since = 0.0
        self.computing = False
        if store is not None and hasattr(signal, "pthread_kill"):
            signal.signal(signal.SIGUSR1, lambda signum, frame: self.flush() if self.computing else None)
            threading.Thread(target=self._watch, args=(threading.main_thread().ident,), daemon=True).start()

    def _watch(self, main: int) -> None:
        # the process's signals (SIGALRM above all) go to the main thread, where flush can hold them back
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        while True:
            time.sleep(GROUP_SECONDS / 2)
            if self.computing and self.held and time.monotonic() - self.since >= GROUP_SECONDS:
                signal.pthread_kill(main, signal.SIGUSR1)

    def hold(self, index: int, result: object) -> None:
        if not self.held:
            self.since = time.monotonic()
        self.held.append((index, result))
        self.conn.send((HELD,))
        if len(self.held) >= GROUP_RUNS or time.monotonic() - self.since >= GROUP_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Store the held results. A SIGALRM meanwhile (the read time limit of the item being computed) would stop
        the store: it is held back and raised again once the store is done, in the compute it belongs to."""
        if not self.held:
            return
        group, self.held = self.held, []
        self.conn.send((STORING,))
        alarms, alarm = [], getattr(signal, "SIGALRM", None)  # not on Windows
        previous = signal.signal(alarm, lambda signum, frame: alarms.append(signum)) if alarm else None
        try:
            try:
                replies = self.store.save(group, lambda key, final: self.conn.send((COMMITTING, key, final)))
            except BaseException as exc:
                replies = [(index, Failure(3, f"internal error: {format_traceback(exc)}")) for index, _ in group]
            self.conn.send((STORED, replies))
        finally:
            if alarm:
                signal.signal(alarm, previous)
            if alarms:
                signal.raise_signal(alarm)
