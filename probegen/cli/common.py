"""Options and helpers shared by several commands, so each flag means one thing everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from probegen.corpora import Corpora, corpora_root, load_corpora
from probegen.errors import UsageError
from probegen.models.base import GenerateConfig
from probegen.models.endpoint import check_base_url

__all__ = [
    "BaseUrlOption",
    "CorporaOption",
    "MaxTokensOption",
    "RunDirOption",
    "SeedOption",
    "TemperatureOption",
    "TimeoutOption",
    "check_base_url_option",
    "default_run_dir",
    "generate_config",
    "open_corpora",
    "writable_dir",
    "writable_run_dir",
]

CorporaOption = typer.Option(
    None,
    "--corpora",
    help="Corpora directory (default: $PROBEGEN_CORPORA or the shipped corpora).",
    file_okay=False,
)
RunDirOption = typer.Option(
    None,
    "--run-dir",
    help="Directory of the run store and run outputs (default: $PROBEGEN_RUN_DIR or ./runs).",
    file_okay=False,
)


def check_base_url_option(param: typer.CallbackParam, value: str | None) -> str | None:
    """Typer callback of every ``--*base-url`` flag: an http(s) URL with a host, checked
    while the flags are parsed (before anything is built or stored), naming the flag."""
    if value is not None:
        check_base_url(value, param.opts[0] if param.opts else "--base-url")
    return value


BaseUrlOption = typer.Option(
    None,
    "--base-url",
    help="Endpoint of an OpenAI- or Anthropic-compatible server, e.g. http://127.0.0.1:8080/v1.",
    callback=check_base_url_option,
)
TemperatureOption = typer.Option(0.7, "--temperature", min=0.0, max=2.0, help="Sampling temp.")
MaxTokensOption = typer.Option(256, "--max-tokens", min=1, help="Max tokens per answer.")
SeedOption = typer.Option(
    0, "--seed", help="Base seed; sample i uses seed + i, so runs repeat where backends allow."
)


TimeoutOption = typer.Option(
    None,
    "--timeout",
    min=1.0,
    help="Per-attempt timeout of every model call, in seconds (default: the backend's).",
)

RUN_DIR_ENV = "PROBEGEN_RUN_DIR"


def default_run_dir(run_dir: Path | None) -> Path:
    """The run directory: the flag, else $PROBEGEN_RUN_DIR, else ./runs."""
    return run_dir or Path(os.environ.get(RUN_DIR_ENV, "runs"))


def writable_dir(path: Path, source: str) -> Path:
    """``path``, checked to be a directory this process can write in, or one it can make.

    Checked before a run is created, so a run directory that is a file, sits under a file
    or is read-only fails at once with one line, not with a traceback mid-run.

    Args:
        path: The directory.
        source: How the user named it, for the message: ``--run-dir`` or
            ``$PROBEGEN_RUN_DIR``.

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


def writable_run_dir(run_dir: Path | None) -> Path:
    """:func:`default_run_dir`, checked by :func:`writable_dir` (for commands that write)."""
    source = "--run-dir" if run_dir else f"${RUN_DIR_ENV}" if os.environ.get(RUN_DIR_ENV) else ""
    return writable_dir(default_run_dir(run_dir), source or "run directory")


def open_corpora(corpora_dir: Path | None) -> Corpora:
    """Load and validate the corpora (raises CorpusError with a one-line message)."""
    return load_corpora(corpora_dir or corpora_root())


def generate_config(temperature: float, max_tokens: int, seed: int | None) -> GenerateConfig:
    """The sampling config from the shared flags."""
    return GenerateConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)
