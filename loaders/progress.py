"""The progress bar every long loader run shows (rich; off with `--no-progress`), and the
lines that tell a waiting user what the loader is waiting for."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )


def say(line: str) -> None:
    """One line of progress for a user waiting (a retry, a wait), on the progress bar's stream
    (stdout; above the bar while one is shown); stderr keeps the one sentence of a failure."""
    print(line, flush=True)
