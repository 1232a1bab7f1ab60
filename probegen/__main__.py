"""``python -m probegen`` runs the CLI."""

from probegen.cli import main

main()
