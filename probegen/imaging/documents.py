"""Drawing documents about a person: résumés, ID badges, application forms, and notes.

The shipped image set (``corpora/images/documents/``) and the image operators draw
their pictures here, so the same person on the same document always gives the same
bytes: a counterfactual pair differs only where the person differs (name, pronouns,
the stylised figure in the photo box), and a regenerated set is byte-identical on the
same Pillow. Nothing is downloaded and no font file is needed: text uses Pillow's
bundled font (``ImageFont.load_default(size=...)``).

Text is large, black on white and never rotated, because the offline vision target
reads documents with OCR; images are greyscale PNGs of 640 x 800 pixels (tens of KB).

Run as ``python -m probegen.imaging.documents``, this module regenerates the shipped set
(its command line is :mod:`probegen.cli.documents`).
"""

from __future__ import annotations

import functools
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "HEIGHT",
    "WIDTH",
    "Document",
    "Figure",
    "Layout",
    "Person",
    "Section",
    "printable",
    "render_document",
    "render_note",
]

WIDTH, HEIGHT = 640, 800
MARGIN = 36
INK, PAPER, BAND, RULE, PHOTO_BG = 0, 255, 40, 150, 228
SKIN, SHIRT, HAIR = 196, 110, 60
"""Grey levels. One skin tone for everyone: the figure shows gender presentation only,
and a race pair differs by name alone."""


class Layout(StrEnum):
    """How a document is laid out."""

    RESUME = "resume"
    """Photo and name at the top, then contact fields and sections."""
    BADGE = "badge"
    """An ID badge: organisation band, large photo, name, fields."""
    FORM = "form"
    """An application form: title, labelled boxes, a small photo."""


class Figure(StrEnum):
    """The stylised figure drawn in a document's photo box, by hair and silhouette."""

    SHORT_HAIR = "short_hair"
    LONG_HAIR = "long_hair"
    SWEPT_HAIR = "swept_hair"
    """Short on one side, swept long on the other."""


@dataclass(frozen=True)
class Section:
    """A titled list of lines ("Experience")."""

    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    """What a document says apart from the person it is about.

    Field values and section lines may use ``{name}``, ``{first}``, ``{surname}`` and
    ``{email}``, filled in from the person.
    """

    layout: Layout
    heading: str
    subheading: str
    fields: tuple[tuple[str, str], ...] = ()
    sections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class Person:
    """The person a document is about.

    Attributes:
        first_name: The first name (what signals gender or race in a counterfactual pair).
        surname: The surname, the same for every image of a pair.
        figure: How the photo box draws them.
        pronouns: A pronouns line such as ``she/her``, or None for none.
    """

    first_name: str
    surname: str
    figure: Figure
    pronouns: str | None = None

    @property
    def name(self) -> str:
        """First name and surname."""
        return f"{self.first_name} {self.surname}"

    def fill(self, text: str) -> str:
        """``text`` with the person's slots filled in."""
        return (
            text.replace("{name}", self.name)
            .replace("{first}", self.first_name)
            .replace("{surname}", self.surname)
            .replace("{email}", self.email)
        )

    @property
    def email(self) -> str:
        """A plausible address at example.com (accents dropped)."""
        return printable(f"{self.first_name}.{self.surname}").lower().replace(" ", "") + (
            "@example.com"
        )


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                       "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " "})  # fmt: skip


def printable(text: str) -> str:
    """``text`` in the characters the bundled font draws: accents and typographic
    punctuation folded to ASCII ("José" -> "Jose"), anything else dropped."""
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in folded if c.isascii())


class _Canvas:
    """A page with a moving cursor: each ``text`` call writes below the previous one.

    Words are drawn one by one with a gap wider than the font's own space: OCR reads
    tightly set words as one ("StaffNurse"), and the offline target reads by OCR.
    """

    def __init__(self) -> None:
        self.image = Image.new("L", (WIDTH, HEIGHT), PAPER)
        self.draw = ImageDraw.Draw(self.image)
        self.y = MARGIN

    @staticmethod
    def _gap(size: int, bold: bool = False) -> float:
        # Small and bold text need relatively wider gaps to stay separate words for OCR.
        return size * (0.55 if size < 22 else 0.42) + (size * 0.2 if bold else 0.0)

    def width_of(self, text: str, size: int, bold: bool = False) -> float:
        words = text.split()
        font = _font(size)
        gaps = self._gap(size, bold) * max(len(words) - 1, 0)
        return sum(float(self.draw.textlength(w, font=font)) for w in words) + gaps

    def wrap(self, text: str, size: int, width: int, bold: bool = False) -> list[str]:
        lines: list[str] = []
        for paragraph in printable(text).split("\n"):
            line = ""
            for word in paragraph.split():
                candidate = f"{line} {word}".strip()
                if line and self.width_of(candidate, size, bold) > width:
                    lines.append(line)
                    line = word
                else:
                    line = candidate
            lines.append(line)
        return lines

    def text(
        self,
        text: str,
        size: int,
        *,
        x: int = MARGIN,
        width: int | None = None,
        bold: bool = False,
        fill: int = INK,
        center: bool = False,
        gap: int = 8,
    ) -> None:
        width = width if width is not None else WIDTH - x - MARGIN
        font = _font(size)
        for line in self.wrap(text, size, width, bold):
            left = x + (width - self.width_of(line, size, bold)) / 2 if center else float(x)
            for word in line.split():
                self.draw.text(
                    (left, self.y), word, font=font, fill=fill,
                    stroke_width=1 if bold else 0, stroke_fill=fill,
                )  # fmt: skip
                left += float(self.draw.textlength(word, font=font)) + self._gap(size, bold)
            self.y += size + gap

    def rule(self, gap: int = 14) -> None:
        self.y += gap // 2
        self.draw.line((MARGIN, self.y, WIDTH - MARGIN, self.y), fill=RULE, width=2)
        self.y += gap

    def band(self, height: int) -> None:
        self.draw.rectangle((0, 0, WIDTH, height), fill=BAND)


def _figure(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], figure: Figure) -> None:
    """A head-and-shoulders figure in ``box``: the photo a real document would carry."""
    left, top, right, bottom = box
    draw.rectangle(box, fill=PHOTO_BG, outline=RULE, width=2)
    w, h = right - left, bottom - top
    cx = left + w // 2
    head_r = w * 22 // 100
    head_cy = top + h * 40 // 100
    hair = (cx - head_r - 4, head_cy - head_r - 6, cx + head_r + 4, head_cy + head_r + 2)
    if figure is Figure.LONG_HAIR:
        # Hair falling behind the head down to the shoulders.
        draw.rounded_rectangle(
            (cx - head_r - 10, head_cy - head_r - 6, cx + head_r + 10, head_cy + head_r * 2),
            radius=head_r,
            fill=HAIR,
        )
    # Shoulders, then the neck and the head over them.
    draw.pieslice(
        (left + w // 10, bottom - h * 32 // 100, right - w // 10, bottom + h * 30 // 100),
        180,
        360,
        fill=SHIRT,
    )
    draw.rectangle(
        (cx - head_r // 3, head_cy + head_r - 4, cx + head_r // 3, bottom - h // 4), fill=SKIN
    )
    draw.ellipse((cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r), fill=SKIN)
    if figure is Figure.SWEPT_HAIR:
        draw.chord(hair, 195, 345, fill=HAIR)
        # A long fringe swept over one side, down past the ear.
        draw.polygon(
            [
                (cx - head_r - 4, head_cy - 4),
                (cx + head_r // 2, head_cy - head_r - 6),
                (cx + head_r + 8, head_cy - head_r // 2),
                (cx + head_r + 6, head_cy + head_r),
                (cx + head_r - 6, head_cy + head_r),
                (cx + head_r - 8, head_cy - head_r // 4),
            ],
            fill=HAIR,
        )
    else:
        # A hairline above the eyes (a cap down to them reads as a helmet).
        draw.chord(hair, 195, 345, fill=HAIR)
    # Eyes and a mouth, so the shape reads as a face.
    eye_y = head_cy - head_r // 6
    for dx in (-head_r // 2, head_r // 2):
        draw.ellipse((cx + dx - 3, eye_y - 3, cx + dx + 3, eye_y + 3), fill=INK)
    draw.arc(
        (cx - head_r // 3, head_cy + head_r // 6, cx + head_r // 3, head_cy + head_r // 2),
        20,
        160,
        fill=INK,
        width=2,
    )


def _fields(canvas: _Canvas, person: Person, document: Document, size: int, x: int) -> None:
    if person.pronouns:
        canvas.text(f"Pronouns: {person.pronouns}", size, x=x)
    for label, value in document.fields:
        canvas.text(f"{label}: {person.fill(value)}", size, x=x)


def _sections(canvas: _Canvas, person: Person, sections: Sequence[Section]) -> None:
    for section in sections:
        canvas.y += 6
        canvas.text(section.title.upper(), 26, bold=True)
        for line in section.lines:
            canvas.text(f"- {person.fill(line)}", 24, x=MARGIN + 8, gap=6)


def _resume(canvas: _Canvas, document: Document, person: Person) -> None:
    photo = (MARGIN, MARGIN, MARGIN + 150, MARGIN + 190)
    _figure(canvas.draw, photo, person.figure)
    x = photo[2] + 28
    canvas.text(document.heading.upper(), 24, x=x, fill=RULE - 40)
    canvas.text(person.name, 40, x=x, bold=True, gap=14)
    canvas.text(person.fill(document.subheading), 24, x=x)
    _fields(canvas, person, document, 24, x)
    canvas.y = max(canvas.y, photo[3] + 10)
    canvas.rule()
    _sections(canvas, person, document.sections)


def _badge(canvas: _Canvas, document: Document, person: Person) -> None:
    canvas.band(96)
    canvas.y = 28
    canvas.text(person.fill(document.subheading).upper(), 30, bold=True, fill=PAPER, center=True)
    canvas.y = 120
    canvas.text(document.heading.upper(), 30, bold=True, center=True, gap=16)
    photo = (WIDTH // 2 - 115, canvas.y, WIDTH // 2 + 115, canvas.y + 280)
    _figure(canvas.draw, photo, person.figure)
    canvas.y = photo[3] + 24
    canvas.text(person.name, 46, bold=True, center=True, gap=18)
    if person.pronouns:
        canvas.text(f"Pronouns: {person.pronouns}", 26, center=True)
    for label, value in document.fields:
        canvas.text(f"{label}: {person.fill(value)}", 26, center=True)
    _sections(canvas, person, document.sections)


def _form(canvas: _Canvas, document: Document, person: Person) -> None:
    photo = (WIDTH - MARGIN - 120, MARGIN, WIDTH - MARGIN, MARGIN + 150)
    _figure(canvas.draw, photo, person.figure)
    width = photo[0] - MARGIN - 20
    canvas.text(document.heading.upper(), 34, bold=True, width=width)
    canvas.text(person.fill(document.subheading), 24, width=width)
    canvas.y = max(canvas.y, photo[3] + 16)
    rows = [("Applicant name", person.name)]
    if person.pronouns:
        rows.append(("Pronouns", person.pronouns))
    rows += [(label, person.fill(value)) for label, value in document.fields]
    for label, value in rows:
        canvas.text(label, 20, fill=RULE - 70, gap=4)
        top = canvas.y
        canvas.draw.rectangle((MARGIN, top, WIDTH - MARGIN, top + 42), outline=RULE, width=2)
        canvas.y = top + 7
        canvas.text(value, 26, x=MARGIN + 10, bold=label == "Applicant name")
        canvas.y = top + 52
    _sections(canvas, person, document.sections)


_LAYOUTS = {Layout.RESUME: _resume, Layout.BADGE: _badge, Layout.FORM: _form}


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # No metadata chunks and fixed settings: the same drawing gives the same bytes.
    # Level 6 is ~9x faster than the maximum for ~6% more bytes; operators draw at run time.
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def render_document(document: Document, person: Person) -> bytes:
    """A PNG of ``document`` about ``person`` (deterministic)."""
    canvas = _Canvas()
    _LAYOUTS[document.layout](canvas, document, person)
    return _png(canvas.image)


NOTE_SIZES = (30, 28, 26, 24, 22)


def render_note(heading: str, text: str) -> bytes | None:
    """A PNG of a typed note: ``heading``, then ``text`` in the largest size that fits.

    Returns:
        The PNG, or None when the text does not fit on the page even at 22 pixels.
    """
    for size in NOTE_SIZES:
        canvas = _Canvas()
        canvas.band(84)
        canvas.y = 26
        canvas.text(heading.upper(), 30, bold=True, fill=PAPER)
        canvas.y = 120
        lines = canvas.wrap(text, size, WIDTH - 2 * MARGIN)
        if 120 + len(lines) * (size + 12) > HEIGHT - MARGIN:
            continue
        canvas.text(text, size, gap=12)
        return _png(canvas.image)
    return None


if __name__ == "__main__":
    # The command line lives with the other commands; this keeps `python -m` working.
    from probegen.cli.documents import main

    raise SystemExit(main())
