"""Options and helpers shared by several commands, so each flag means one thing everywhere."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import typer

from probegen.corpora import Corpora, corpora_root, load_corpora
from probegen.errors import ConfigError, UsageError
from probegen.models.base import GenerateConfig
from probegen.models.endpoint import check_base_url
from probegen.run_dir import checked_run_dir, default_run_dir, writable_dir

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
    "flags_for_fields",
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


def writable_run_dir(run_dir: Path | None) -> Path:
    """:func:`default_run_dir`, checked by :func:`writable_dir` (for commands that write)."""
    return checked_run_dir(run_dir, "--run-dir")


def open_corpora(corpora_dir: Path | None) -> Corpora:
    """Load and validate the corpora (raises CorpusError with a one-line message)."""
    return load_corpora(corpora_dir or corpora_root())


def generate_config(temperature: float, max_tokens: int, seed: int | None) -> GenerateConfig:
    """The sampling config from the shared flags."""
    return GenerateConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)


_FIELD_IN_TEXT = re.compile(r"`([a-z][a-z0-9_]*)`")
_SEE_CONFIG = re.compile(r"see [A-Z]\w*Config\b")


def said_with_flags(error: ConfigError, command: str, flags: Mapping[str, str]) -> UsageError:
    """``error`` as the CLI says it: each config field (the one it is about, and any
    written in backticks in its text) as the command's flag.

    Args:
        error: A library error naming a config field.
        command: The command, for the fallback fix (``see `probegen eval --help```).
        flags: The flag of each field whose name does not say it (``timeout_s`` ->
            ``--timeout``); any other ``field_name`` is ``--field-name``.
    """

    def flag(field: str) -> str:
        return flags.get(field, "--" + field.replace("_", "-"))

    def said(text: str) -> str:
        return _FIELD_IN_TEXT.sub(lambda match: flag(match.group(1)), text)

    named = flag(error.field) if error.value is None else f"{flag(error.field)} {error.value}"
    fix = error.fix
    if fix is None or _SEE_CONFIG.match(fix):
        fix = f"see `probegen {command} --help` for {flag(error.field)}"
    return UsageError(f"{named}: {said(error.problem)}", fix=said(fix))


@contextmanager
def flags_for_fields(command: str, flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run the body; a library :class:`ConfigError` from it becomes the one-line
    :class:`UsageError` that names the flag (see :func:`said_with_flags`)."""
    try:
        yield
    except ConfigError as error:
        raise said_with_flags(error, command, flags or {}) from None
