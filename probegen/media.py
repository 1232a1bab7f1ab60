"""Where probe images live: a content-addressed folder in the run directory.

Every image a probe refers to is copied to ``<run-dir>/media/<sha256><suffix>`` and the
probe's :class:`~probegen.probe.MediaPart` holds that relative path and checksum. So a
run directory is self-contained (the review app serves images from it and nowhere else,
and a release copies them from it), the same image is stored once, and a file changed
behind our back is detected when it is read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from probegen.errors import UsageError
from probegen.models.base import ImageInput
from probegen.probe import MediaPart

__all__ = ["MEDIA_DIR", "MEDIA_TYPES", "image_input", "store_image", "store_image_file"]

MEDIA_DIR = "media"
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp", ".gif": "image/gif"}  # fmt: skip


def store_image(
    run_dir: Path, data: bytes, suffix: str = ".png", **fields: str | None
) -> MediaPart:
    """Store image bytes in the run's media folder (once) and describe them.

    Args:
        run_dir: The run directory.
        data: The encoded image.
        suffix: File suffix, one of :data:`MEDIA_TYPES`.
        fields: Further :class:`MediaPart` fields: ``variant``, ``group``, ``description``.

    Returns:
        A media part with the relative path and checksum.
    """
    if suffix.lower() not in MEDIA_TYPES:
        raise UsageError(f"image suffix {suffix}: not an image type", fix=f"use {MEDIA_TYPES}")
    digest = hashlib.sha256(data).hexdigest()
    relative = f"{MEDIA_DIR}/{digest}{suffix.lower()}"
    target = run_dir / relative
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # concurrent writers of one digest write the same bytes
    return MediaPart(path=relative, sha256=digest, **fields)


def store_image_file(run_dir: Path, source: Path, **fields: str | None) -> MediaPart:
    """Copy an image file (e.g. from a corpora image set) into the run's media folder.

    Raises:
        UsageError: If the file is missing or not an image type.
    """
    if not source.is_file():
        raise UsageError(f"image {source}: no such file")
    return store_image(run_dir, source.read_bytes(), source.suffix, **fields)


def image_input(part: MediaPart, run_dir: Path) -> ImageInput:
    """The bytes of a probe's image, ready to attach to a chat message.

    Raises:
        UsageError: If the file is missing, outside ``run_dir``, not an image type, or
            differs from the checksum the probe recorded.
    """
    base = run_dir.resolve()
    path = (base / part.path).resolve()
    media_type = MEDIA_TYPES.get(path.suffix.lower())
    if not path.is_relative_to(base) or media_type is None or not path.is_file():
        raise UsageError(
            f"image {part.path}: not an image file inside {run_dir}",
            fix="images are stored under <run-dir>/media/ by the operators that make them",
        )
    data = path.read_bytes()
    found = ImageInput.from_bytes(data, media_type)
    if part.sha256 is not None and found.sha256 != part.sha256:
        raise UsageError(
            f"image {part.path}: its checksum changed since the probe was made",
            fix="restore the original file (images are content-addressed; do not edit them)",
        )
    return found
