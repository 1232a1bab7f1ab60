"""Options and helpers shared by several commands, so each flag means one thing everywhere."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel

from probegen.corpora import Corpora, corpora_root, load_corpora
from probegen.errors import ConfigError, ProbegenError, UsageError
from probegen.models.base import GenerateConfig
from probegen.models.endpoint import check_base_url
from probegen.models.replicas import ReplicaStats
from probegen.run_dir import checked_run_dir, default_run_dir, writable_dir

__all__ = [
    "BaseUrlOption",
    "CorporaOption",
    "MaxTokensOption",
    "RunDirOption",
    "SeedOption",
    "TemperatureOption",
    "TimeoutOption",
    "base_urls",
    "check_base_url_option",
    "config_defaults",
    "default_run_dir",
    "fields_as_flags",
    "flags_for_fields",
    "generate_config",
    "open_corpora",
    "replica_lines",
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


def check_base_url_option(
    param: typer.CallbackParam, value: str | list[str] | None
) -> str | list[str] | None:
    """Typer callback of every ``--*base-url`` flag (repeated or not): each an http(s) URL
    with a host, checked while the flags are parsed (before anything is built or
    stored), naming the flag."""
    urls: list[str] = [value] if isinstance(value, str) else list(value or [])
    for url in urls:
        check_base_url(url, param.opts[0] if param.opts else "--base-url")
    return value


BaseUrlOption = typer.Option(
    None,
    "--base-url",
    help="Endpoint of an OpenAI- or Anthropic-compatible server, e.g. http://127.0.0.1:8080/v1; "
    "repeat it for replicas serving the same model (calls spread over them; one that fails "
    "is backed off).",
    callback=check_base_url_option,
)
"""A repeatable ``--base-url``: a command takes ``list[str] | None`` and passes
:func:`base_urls` of it on."""


def base_urls(values: list[str] | None) -> str | list[str] | None:
    """Repeated ``--base-url`` values as the library takes them: None, one URL, or the
    replicas' URLs."""
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def replica_lines(stats: Sequence[ReplicaStats]) -> list[str]:
    """One line per replica of a target on several endpoints: what it served and failed."""
    return [
        f"replica {s.endpoint}: served {s.served}, failed {s.failed} (at the end: {s.state})"
        for s in stats
    ]


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


def config_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """A config model's field defaults, by field name: the CLI's flags take their
    defaults from here, so each default is written once, in the library."""
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
    }


def generate_config(temperature: float, max_tokens: int, seed: int | None) -> GenerateConfig:
    """The sampling config from the shared flags."""
    return GenerateConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)


_FIELD_IN_TEXT = re.compile(r"`([a-z][a-z0-9_]*)`")
_SEE_CONFIG = re.compile(r"see [A-Z]\w*Config\b")


def _flag(field: str, flags: Mapping[str, str]) -> str:
    return flags.get(field, "--" + field.replace("_", "-"))


def fields_as_flags(text: str, flags: Mapping[str, str]) -> str:
    """``text`` with each config field written in backticks (```base_url```) said as
    its flag (``--base-url``); ``flags`` as in :func:`said_with_flags`."""
    return _FIELD_IN_TEXT.sub(lambda match: _flag(match.group(1), flags), text)


def said_with_flags(error: ConfigError, command: str, flags: Mapping[str, str]) -> UsageError:
    """``error`` as the CLI says it: each config field (the one it is about, and any
    written in backticks in its text) as the command's flag.

    Args:
        error: A library error naming a config field.
        command: The command, for the fallback fix (``see `probegen eval --help```).
        flags: The flag of each field whose name does not say it (``timeout_s`` ->
            ``--timeout``); any other ``field_name`` is ``--field-name``.
    """
    flag = _flag(error.field, flags)
    named = flag if error.value is None else f"{flag} {error.value}"
    fix = error.fix
    if fix is None or _SEE_CONFIG.match(fix):
        fix = f"see `probegen {command} --help` for {flag}"
    return UsageError(
        f"{named}: {fields_as_flags(error.problem, flags)}", fix=fields_as_flags(fix, flags)
    )


@contextmanager
def flags_for_fields(command: str, flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run the body; a library :class:`ConfigError` from it becomes the one-line
    :class:`UsageError` that names the flag (see :func:`said_with_flags`). Any other
    user error keeps its class, with the fields its text names in backticks said as
    flags too (a missing API key's fix names ```base_url```)."""
    try:
        yield
    except ConfigError as error:
        raise said_with_flags(error, command, flags or {}) from None
    except ProbegenError as error:
        error.message = fields_as_flags(error.message, flags or {})
        error.fix = error.fix and fields_as_flags(error.fix, flags or {})
        error.args = (str(error),)
        raise
