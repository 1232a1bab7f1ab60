"""probegen's data: attributes, names, topic taxonomy and seed questions.

This package holds data files only; :mod:`probegen.corpora` loads and validates them.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
"""The directory holding the shipped corpus files."""
