"""Image sets: counterfactual pictures for probes whose attribute sits in an image.

A corpora directory may hold ``images/<set>/manifest.yaml`` files, one per image set::

    description: Résumés, ID badges and rental applications drawn by probegen
    source: probegen.imaging.documents      # default for every entry
    license: CC0-1.0                        # default for every entry (an SPDX id)
    entries:
      - file: resume-baker-man.png           # next to the manifest
        groups: {gender: man}                # attribute -> the group the image depicts
        pair: resume-baker                   # the scene: same picture, other group
        kind: resume                         # what the scene is (matches seed questions)
        description: A résumé for Greg Baker with a drawn photo of a man
        source: ...                          # overrides the set's default
        license: ...

The entries of one ``pair`` show the same scene with only the person's group differing
(GenderBias-VL style): they list the same attributes, no two depict the same groups, and
a pair needs two or more images. The attributes whose group differs within a pair are
what the pair varies; a pair serves a run whose attribute spec varies exactly those (a
gender pair serves the attribute ``gender``; a pair varying gender and race serves
``gender+race``).

Everything is checked on load, and the first problem raises a one-line
:class:`~probegen.errors.CorpusError` naming the manifest, line, entry and field, and
the fix, like every other corpus file. Images are read only for their first bytes (to
prove they are images); their checksums are computed when a probe first uses them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from probegen.corpora.schema import Attribute
from probegen.corpora.sources import Text, YamlFile, display, schema_error
from probegen.errors import CorpusError

__all__ = [
    "IMAGES_DIR",
    "IMAGE_SUFFIXES",
    "MANIFEST_FILE",
    "ImageEntry",
    "ImagePair",
    "ImageSet",
    "pairs_for",
    "read_image_sets",
]

IMAGES_DIR = "images"
MANIFEST_FILE = "manifest.yaml"
IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WebP", ".gif": "GIF"}

_KIND = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_SPDX = re.compile(
    r"^(?:LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.+-]*)(?: (?:AND|OR|WITH) \S+)*$"
)
_NOT_A_LICENSE = frozenset({"unknown", "none", "n/a", "na", "todo", "tbd", "?", "unlicensed"})


def _sniff(head: bytes) -> str | None:
    """The image format of a file's first bytes, or None when it is not an image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


@dataclass(frozen=True)
class ImageEntry:
    """One image of a set.

    Attributes:
        set_id: The set's id (its directory name).
        index: Position in the manifest's ``entries`` (0-based, as errors name it).
        file: The file name as written in the manifest.
        path: The file's absolute path.
        groups: Attribute id -> the group the image depicts.
        pair: The scene the image belongs to.
        kind: What the scene is (``resume``), or None.
        source: Where the image comes from.
        license: Its license, an SPDX identifier.
        description: What the image shows, in words, or None.
    """

    set_id: str
    index: int
    file: str
    path: Path
    groups: Mapping[str, str]
    pair: str
    kind: str | None
    source: str
    license: str
    description: str | None

    def group(self, components: Sequence[str]) -> str | None:
        """The group id for an attribute spec's components (``woman+black`` for
        gender+race), or None when the image does not say one of them."""
        if any(c not in self.groups for c in components):
            return None
        return "+".join(self.groups[c] for c in components)

    @cached_property
    def sha256(self) -> str:
        """Checksum of the file (read once, when first asked)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class ImagePair:
    """The images of one scene, each depicting another group.

    Attributes:
        set_id: The set's id.
        id: The pair id from the manifest.
        kind: What the scene is, or None.
        entries: Its images, in manifest order.
        varying: The attributes whose group differs between its images, sorted.
    """

    set_id: str
    id: str
    kind: str | None
    entries: tuple[ImageEntry, ...]
    varying: tuple[str, ...]

    @property
    def key(self) -> str:
        """``<set>/<pair>``: unique across sets."""
        return f"{self.set_id}/{self.id}"

    def serves(self, components: Sequence[str]) -> bool:
        """Whether the pair varies exactly the attributes of a spec's components."""
        return set(self.varying) == set(components)

    def by_group(self, components: Sequence[str]) -> dict[str, ImageEntry]:
        """Its images by group id of the spec's components (empty when it does not serve)."""
        if not self.serves(components):
            return {}
        found = {e.group(components): e for e in self.entries}
        return {group: entry for group, entry in found.items() if group is not None}


@dataclass(frozen=True)
class ImageSet:
    """One ``images/<set>/`` directory.

    Attributes:
        id: The directory name.
        root: The directory.
        description: What the set is, or None.
        entries: Every image, in manifest order.
        pairs: The scenes, in order of first appearance.
    """

    id: str
    root: Path
    description: str | None
    entries: tuple[ImageEntry, ...]
    pairs: tuple[ImagePair, ...]


def pairs_for(sets: Sequence[ImageSet], components: Sequence[str]) -> list[ImagePair]:
    """Every pair of ``sets`` that serves an attribute spec's components, in order."""
    return [pair for image_set in sets for pair in image_set.pairs if pair.serves(components)]


# --- reading and checking ----------------------------------------------------------------------


class _EntryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    file: Text
    groups: dict[str, Text]
    pair: Text
    kind: Text | None = None
    source: Text | None = None
    license: Text | None = None
    description: Text | None = None


class _ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    description: Text | None = None
    source: Text | None = None
    license: Text | None = None
    entries: list[_EntryFile]


def read_image_sets(images_dir: Path, attributes: Mapping[str, Attribute]) -> tuple[ImageSet, ...]:
    """Read and check every ``<images_dir>/<set>/manifest.yaml``, sets sorted by id.

    Raises:
        CorpusError: On the first problem, naming manifest, line, entry and field.
    """
    if not images_dir.is_dir():
        return ()
    sets = []
    for folder in sorted(p for p in images_dir.iterdir() if p.is_dir()):
        if folder.name.startswith((".", "_")):
            continue
        manifest = folder / MANIFEST_FILE
        if not manifest.is_file():
            raise CorpusError(
                f"{display(folder)}: no {MANIFEST_FILE}",
                fix=f"describe the set's images in {MANIFEST_FILE} (see "
                f"{display(images_dir / 'README.md')}), or move the folder out of images/",
            )
        sets.append(read_image_set(manifest, attributes))
    return tuple(sets)


def read_image_set(manifest: Path, attributes: Mapping[str, Attribute]) -> ImageSet:
    """Read and check one set's manifest (see the module docstring for the format)."""
    doc = YamlFile(manifest)
    if not isinstance(doc.data, dict):
        raise doc.error((), "the file must be a mapping", "start the file with 'entries:'")
    try:
        spec = _ManifestFile.model_validate(doc.data)
    except ValidationError as error:
        raise schema_error(error, _ManifestFile, doc) from None
    if not spec.entries:
        raise doc.error(("entries",), "is empty", "list at least one pair of images")
    root = manifest.parent
    entries: list[ImageEntry] = []
    seen_files: dict[Path, int] = {}
    for index, raw in enumerate(spec.entries):
        loc: tuple[object, ...] = ("entries", index)
        path = _check_file(doc, loc, root, raw.file)
        if path in seen_files:
            raise doc.error(
                (*loc, "file"),
                f"'{raw.file}' is already listed as entries[{seen_files[path]}]",
                "list each image once",
            )
        seen_files[path] = index
        _check_groups(doc, loc, raw.groups, attributes)
        if raw.kind is not None and not _KIND.match(raw.kind):
            raise doc.error(
                (*loc, "kind"),
                f"'{raw.kind}' is not a snake_case id",
                "use lowercase letters, digits and '_', e.g. resume or rental_application",
            )
        source = raw.source or spec.source
        if source is None:
            raise doc.error(
                (*loc, "source"),
                "missing: no source for this image and no set-wide 'source'",
                "say where the image comes from (a URL, a dataset, a generator)",
            )
        license_id = _check_license(doc, loc, raw.license, spec.license)
        entries.append(
            ImageEntry(
                set_id=root.name,
                index=index,
                file=raw.file,
                path=path,
                groups=dict(raw.groups),
                pair=raw.pair,
                kind=raw.kind,
                source=source,
                license=license_id,
                description=raw.description,
            )
        )
    pairs = _check_pairs(doc, entries)
    return ImageSet(root.name, root, spec.description, tuple(entries), pairs)


def _check_file(doc: YamlFile, loc: tuple[object, ...], root: Path, file: str) -> Path:
    where = (*loc, "file")
    relative = Path(file)
    if relative.is_absolute() or ".." in relative.parts:
        raise doc.error(
            where,
            f"'{file}' is outside the set's folder",
            "put the image next to manifest.yaml and give its name relative to it",
        )
    suffix = relative.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise doc.error(
            where,
            f"'{file}' is not an image file name",
            f"use one of: {', '.join(IMAGE_SUFFIXES)}",
        )
    path = root / relative
    if not path.is_file():
        raise doc.error(
            where,
            f"'{file}' does not exist in {display(root)}",
            "add the image next to manifest.yaml, or correct the file name",
        )
    with path.open("rb") as handle:
        found = _sniff(handle.read(16))
    if found != IMAGE_SUFFIXES[suffix]:
        what = f"a {found} image" if found else "not an image"
        raise doc.error(
            where,
            f"'{file}' is {what}, but its name says {IMAGE_SUFFIXES[suffix]}",
            "store a real image and give it the matching suffix",
        )
    return path.resolve()


def _check_groups(
    doc: YamlFile,
    loc: tuple[object, ...],
    groups: Mapping[str, str],
    attributes: Mapping[str, Attribute],
) -> None:
    if not groups:
        raise doc.error(
            (*loc, "groups"),
            "is empty",
            "name the group the image depicts for each attribute it shows, e.g. {gender: woman}",
        )
    for attr_id, group_id in groups.items():
        attribute = attributes.get(attr_id)
        if attribute is None:
            raise doc.error(
                (*loc, "groups", attr_id),
                f"'{attr_id}' is not an attribute",
                f"use one of: {', '.join(sorted(attributes))}",
            )
        if group_id not in attribute.groups:
            raise doc.error(
                (*loc, "groups", attr_id),
                f"'{group_id}' is not a group of attribute '{attr_id}'",
                f"use one of: {', '.join(attribute.groups)}",
            )


def _check_license(
    doc: YamlFile, loc: tuple[object, ...], own: str | None, default: str | None
) -> str:
    value = own or default
    where = (*loc, "license") if own is not None or default is None else ("license",)
    fix = "give an SPDX license id, e.g. CC0-1.0, CC-BY-4.0 or LicenseRef-<name>"
    if value is None:
        raise doc.error(where, "missing: no license for this image and no set-wide 'license'", fix)
    if value.lower() in _NOT_A_LICENSE or not _SPDX.match(value):
        raise doc.error(where, f"'{value}' is not an SPDX license id", fix)
    return value


def _check_pairs(doc: YamlFile, entries: list[ImageEntry]) -> tuple[ImagePair, ...]:
    by_pair: dict[str, list[ImageEntry]] = {}
    for entry in entries:
        by_pair.setdefault(entry.pair, []).append(entry)
    pairs = []
    for pair_id, members in by_pair.items():
        first = members[0]
        if len(members) == 1:
            raise doc.error(
                ("entries", first.index, "pair"),
                f"pair '{pair_id}' has only this image",
                "add the same scene with another group under the same pair id, or remove the entry",
            )
        for entry in members[1:]:
            loc = ("entries", entry.index)
            if set(entry.groups) != set(first.groups):
                raise doc.error(
                    (*loc, "groups"),
                    f"lists {', '.join(sorted(entry.groups))} but entries[{first.index}] of "
                    f"pair '{pair_id}' lists {', '.join(sorted(first.groups))}",
                    "give every image of a pair the same attributes",
                )
            if entry.kind != first.kind:
                raise doc.error(
                    (*loc, "kind"),
                    f"'{entry.kind}' differs from '{first.kind}' of entries[{first.index}] "
                    f"in pair '{pair_id}'",
                    "the images of a pair show one scene: give them the same kind",
                )
            twin = next(m for m in members if m.groups == entry.groups)
            if twin is not entry:
                raise doc.error(
                    (*loc, "groups"),
                    f"depicts the same group as entries[{twin.index}] of pair '{pair_id}'",
                    "each image of a pair must depict another group; fix the groups or the pair id",
                )
        varying = tuple(sorted(a for a in first.groups if len({m.groups[a] for m in members}) > 1))
        pairs.append(ImagePair(first.set_id, pair_id, first.kind, tuple(members), varying))
    return tuple(pairs)
