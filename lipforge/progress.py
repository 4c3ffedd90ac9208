"""Progress bars and the one summary line each stage prints."""
from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextmanager
def progress_bar(desc: str, total: int):
    """Yields advance(); draws a bar on a terminal, stays silent in logs (CI, dvc's captured output)."""
    if not sys.stderr.isatty():
        yield lambda n=1: None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as prog:
        task = prog.add_task(desc, total=total)
        yield lambda n=1: prog.advance(task, n)


def summary(stage: str, text: str) -> None:
    """The one line a stage prints when it is done."""
    console.print(f"[bold green]{stage}[/]: {text}", highlight=False)
