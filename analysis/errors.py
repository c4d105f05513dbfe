"""One exception type for every problem a user can fix by changing their input.

The CLI prints these as a single paragraph (no traceback unless ``--debug``) and exits
non-zero; everything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Exit statuses of the `segments` command (README, "Commands").
EXIT_BUG = 1
EXIT_INPUT = 2
EXIT_NO_QUARTO = 3
EXIT_RENDER = 4
EXIT_BUSY = 5  # another run holds the results folder or the site (try again later)
EXIT_WRITE = 6  # the disk is full or the folder cannot be written
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # SIGTERM (128 + 15), handled like Ctrl-C


@dataclass
class InputError(Exception):
    """A problem with a user's file or setting, described so they can fix it.

    ``problem`` says what is wrong; ``expected`` what the tool needs; ``hint`` what to do.
    ``path``, ``column`` and ``line`` (1-based, counting the header as line 1) locate it.
    """

    problem: str
    path: Path | str | None = None
    column: str | None = None
    line: int | None = None
    expected: str | None = None
    hint: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"file {self.path}")
        if self.column is not None:
            where.append(f"column {self.column}")
        if self.line is not None:
            where.append(f"line {self.line}")
        text = (", ".join(where) + ": " if where else "") + self.problem.rstrip(".") + "."
        if self.expected:
            text += f" Expected {self.expected.rstrip('.')}."
        if self.hint:
            text += f" {self.hint.rstrip('.')}."
        return text

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        """Pickle by fields, so an error raised on a cluster worker reaches the user whole."""
        return (type(self), (self.problem, self.path, self.column, self.line, self.expected, self.hint))


class BusyError(InputError):
    """Another run is writing the same folder: the user waits or stops that run."""


class WriteError(InputError):
    """The output folder cannot take the files (full disk, quota, read-only, no permission)."""
