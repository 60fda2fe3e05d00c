"""The batch progress bar (rich, on stderr): counts of valid, invalid and failed runs; off unless stderr is a
terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress(total: int, enabled: bool = True) -> Iterator[Callable[[object], None]]:
    """Yield tick(entry), called once per finished run; draws nothing when disabled or stderr is no terminal."""
    if not (enabled and sys.stderr.isatty() and sys.stdout.isatty()):
        yield lambda entry: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    counts = {"valid": 0, "invalid": 0, "failed": 0}
    bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn(), console=Console(stderr=True), auto_refresh=False, transient=True)
    task = bar.add_task(_counts(counts), total=total)

    drawn = [0.0, 0]  # when the bar was last drawn, and the runs it showed

    def tick(entry) -> None:  # a batch reports its runs a group at a time: the bar is drawn at most 10 times a second
        counts[entry.status] += 1
        now, done = time.monotonic(), sum(counts.values())
        if now - drawn[0] >= 0.1 or done == total:
            bar.update(task, advance=done - drawn[1], description=_counts(counts), refresh=True)
            drawn[:] = now, done

    with bar:  # no refresh thread (auto_refresh off): worker processes are forked while it shows
        yield tick


def _counts(counts: dict[str, int]) -> str:
    return f"[green]{counts['valid']} valid[/] [yellow]{counts['invalid']} invalid[/] [red]{counts['failed']} failed[/]"
