"""Where runs live: the run directory, found and checked before a run is created.

Library calls and the CLI share these, so ``probegen.evolve(run_dir=...)`` and
``probegen evolve`` find (and refuse) the same directories.
"""

from __future__ import annotations

import os
from pathlib import Path

from probegen.errors import UsageError

__all__ = ["RUN_DIR_ENV", "checked_run_dir", "default_run_dir", "writable_dir"]

RUN_DIR_ENV = "PROBEGEN_RUN_DIR"


def default_run_dir(run_dir: Path | None) -> Path:
    """The run directory: ``run_dir``, else $PROBEGEN_RUN_DIR, else ./runs."""
    return run_dir or Path(os.environ.get(RUN_DIR_ENV, "runs"))


def writable_dir(path: Path, source: str) -> Path:
    """``path``, checked to be a directory this process can write in, or one it can make.

    Checked before a run is created, so a run directory that is a file, sits under a file
    or is read-only fails at once with one line, not with a traceback mid-run.

    Args:
        path: The directory.
        source: How the user named it, for the message: ``run_dir``,
            ``$PROBEGEN_RUN_DIR`` (the CLI passes its flag).

    Raises:
        UsageError: If ``path`` or its nearest existing parent is not a directory, or is
            not writable.
    """
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    where = "" if existing == path else f"its parent {existing} "
    if existing.exists() and not existing.is_dir():
        raise UsageError(
            f"{source} {path}: {where}is a file, not a directory",
            fix="point it at a directory, or at a path where one can be created",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            f"{source} {path}: {where}is not writable",
            fix="point it at a directory you can write to, or change its permissions",
        )
    return path


def checked_run_dir(run_dir: Path | None, name: str = "run_dir") -> Path:
    """:func:`default_run_dir`, checked by :func:`writable_dir` (for calls that write).

    Args:
        run_dir: The directory given, or None for the default.
        name: What the caller calls it, for the message (``run_dir``; the CLI's flag).
    """
    source = name if run_dir else f"${RUN_DIR_ENV}" if os.environ.get(RUN_DIR_ENV) else ""
    return writable_dir(default_run_dir(run_dir), source or "run directory")
