"""``python -m probegen.imaging.documents``: regenerate the shipped document image set.

A command of its own (not a ``probegen`` sub-command): it rewrites data shipped with the
package, which only a maintainer does. The rendering is
:func:`probegen.imaging.sets.write_document_set`; this is its command line::

    python -m probegen.imaging.documents --out corpora/images/documents
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from probegen.cli.common import fields_as_flags
from probegen.corpora import load_corpora
from probegen.errors import ProbegenError
from probegen.imaging.sets import write_document_set

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Render the document set into ``--out``; 0 on success, 2 on a user error."""
    parser = argparse.ArgumentParser(
        prog="python -m probegen.imaging.documents",
        description="Render the document image set from corpora/images/documents.yaml.",
    )
    parser.add_argument("--out", type=Path, required=True, help="the set's folder")
    parser.add_argument("--corpora", type=Path, default=None, help="corpora directory")
    args = parser.parse_args(argv)
    try:
        files = write_document_set(args.out, load_corpora(args.corpora))
    except ProbegenError as error:
        # The library names its arguments (`out`); this command's flags share their names.
        print(f"error: {fields_as_flags(str(error), {})}")
        return 2
    size = sum(path.stat().st_size for path in files)
    print(f"wrote {len(files) - 1} images and manifest.yaml ({size / 1024:.0f} KB) to {args.out}")
    return 0
