"""The ``probegen`` command line. Importing this package registers every sub-command."""

from probegen.cli import (  # noqa: F401  (registers commands)
    ask,
    corpora,
    eval,
    evolve,
    models,
    probe,
    release,
    replicate,
    review,
)
from probegen.cli.app import app, main

__all__ = ["app", "main"]
