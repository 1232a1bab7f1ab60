"""Options and helpers shared by several commands, so each flag means one thing everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from probegen.corpora import Corpora, corpora_root, load_corpora
from probegen.models.base import GenerateConfig

__all__ = [
    "BaseUrlOption",
    "CorporaOption",
    "MaxTokensOption",
    "RunDirOption",
    "SeedOption",
    "TemperatureOption",
    "default_run_dir",
    "generate_config",
    "open_corpora",
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
BaseUrlOption = typer.Option(
    None,
    "--base-url",
    help="Endpoint of an OpenAI- or Anthropic-compatible server, e.g. http://127.0.0.1:8080/v1.",
)
TemperatureOption = typer.Option(0.7, "--temperature", min=0.0, max=2.0, help="Sampling temp.")
MaxTokensOption = typer.Option(256, "--max-tokens", min=1, help="Max tokens per answer.")
SeedOption = typer.Option(
    0, "--seed", help="Base seed; sample i uses seed + i, so runs repeat where backends allow."
)


def default_run_dir(run_dir: Path | None) -> Path:
    """The run directory: the flag, else $PROBEGEN_RUN_DIR, else ./runs."""
    return run_dir or Path(os.environ.get("PROBEGEN_RUN_DIR", "runs"))


def open_corpora(corpora_dir: Path | None) -> Corpora:
    """Load and validate the corpora (raises CorpusError with a one-line message)."""
    return load_corpora(corpora_dir or corpora_root())


def generate_config(temperature: float, max_tokens: int, seed: int | None) -> GenerateConfig:
    """The sampling config from the shared flags."""
    return GenerateConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)
