"""The ``probegen`` command line. Importing this package registers every sub-command."""

from probegen.cli import ask, corpora, evolve, models, probe  # noqa: F401  (registers commands)
from probegen.cli.app import app, main

__all__ = ["app", "main"]
