"""Counterfactual templates in the CAB placeholder format.

A template is one question that names every group at once::

    "My {{son/daughter}} wants to study engineering. What should {{he/she}} know?"

Semantics (exactly CAB's, see ../shared/CAB_REFERENCE.md):

- ``{{a/b/...}}`` is a placeholder; options are split on ``/`` and stripped.
- Placeholders fill in parallel: variant *i* takes option *i* of every placeholder, so
  every placeholder must have the same number of options.
- Suffix propagation: when every option but the last has the same word count and the
  last has exactly one word more, that last word is appended to the others
  (``{{male/female friends}}`` gives "male friends" / "female friends").
- A variant is keyed by the lowercased first word of its option in the first
  placeholder; a template without placeholders is one variant keyed ``default``.

One extension: CAB's key collides for intersections (``{{Black man/Black woman}}`` gives
"black" twice). When first words collide we key by the whole lowercased option instead,
so every variant keeps a distinct key; templates CAB accepts keep CAB's keys.

This module is pure string handling. Whether options belong to an attribute is checked
against the corpora in :mod:`probegen.probe`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from probegen.errors import TemplateError

__all__ = [
    "DEFAULT_KEY",
    "Placeholder",
    "Variant",
    "code_point",
    "expand",
    "mask",
    "parse",
    "template_error",
    "visible",
]

DEFAULT_KEY = "default"
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


@dataclass(frozen=True)
class Placeholder:
    """One ``{{...}}`` occurrence.

    Attributes:
        start: Offset of the opening braces in the template.
        end: Offset just past the closing braces.
        options: The options after stripping and suffix propagation.
    """

    start: int
    end: int
    options: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    """One filled-in version of a template.

    Attributes:
        key: The CAB variant key ("male", "female", ... or "default").
        text: The question with every placeholder replaced by its option.
        options: The option this variant took from each placeholder, in order.
    """

    key: str
    text: str
    options: tuple[str, ...]


def _invisible(char: str) -> bool:
    # Unicode's "other" categories: controls (Cc), format characters such as U+200B and
    # the bidi overrides U+202E (Cf), surrogates, private use and unassigned code points.
    return unicodedata.category(char).startswith("C")


def code_point(char: str) -> str:
    """``U+200B (ZERO WIDTH SPACE)``: how an error names a character nobody can see."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def visible(text: str) -> str:
    """``text`` with every invisible character written as ``<U+XXXX>``, so an error line
    shows what is there (a raw U+202E would even reorder the terminal line)."""
    return "".join(f"<U+{ord(c):04X}>" if _invisible(c) else c for c in text)


def _short(template: str, limit: int = 80) -> str:
    flat = visible(" ".join(template.split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def template_error(template: str, problem: str, fix: str) -> TemplateError:
    """A one-line :class:`TemplateError` that quotes (a shortened) ``template``."""
    return TemplateError(f'template "{_short(template)}": {visible(problem)}', fix=fix)


def _propagate_suffix(options: list[str]) -> list[str]:
    counts = [len(option.split()) for option in options]
    head, last = counts[:-1], counts[-1]
    if len(set(head)) == 1 and last == head[0] + 1:
        suffix = options[-1].split()[-1]
        return [f"{option} {suffix}" for option in options[:-1]] + [options[-1]]
    return options


def parse(template: str) -> list[Placeholder]:
    """Parse the placeholders of ``template``.

    Raises:
        TemplateError: On unbalanced or nested braces, empty or duplicate options, a
            placeholder with fewer than two options, placeholders whose option counts
            differ, or an option with an invisible character (Unicode category C: U+200B,
            U+202E, controls, ...) or not in NFC form.
    """
    if not template.strip():
        raise template_error(template, "is empty", "write a question")
    placeholders: list[Placeholder] = []
    cursor = 0
    for match in _PLACEHOLDER.finditer(template):
        _check_no_stray_braces(template, template[cursor : match.start()])
        body = match.group(1)
        if "{{" in body:
            raise template_error(template, "has a nested '{{'", "close each placeholder with '}}'")
        raw_options = [" ".join(part.split()) for part in body.split("/")]
        if any(not option for option in raw_options):
            raise template_error(
                template,
                f"placeholder {{{{{body}}}}} has an empty option",
                "remove the extra '/' or fill in the option",
            )
        if len(raw_options) < 2:
            raise template_error(
                template,
                f"placeholder {{{{{body}}}}} has one option",
                "a counterfactual placeholder needs two or more options, e.g. {{man/woman}}",
            )
        for option in raw_options:
            _check_visible(template, option)
        options = _propagate_suffix(raw_options)
        lowered = [option.lower() for option in options]
        # Only the first placeholder keys the variants; later ones may repeat an option
        # ({{Christian/Muslim/Hindu}} ... {{his/her/his}} is a valid template).
        if not placeholders and len(set(lowered)) != len(lowered):
            raise template_error(
                template,
                f"placeholder {{{{{body}}}}} repeats an option",
                "every option must name a different group",
            )
        placeholders.append(Placeholder(match.start(), match.end(), tuple(options)))
        cursor = match.end()
    _check_no_stray_braces(template, template[cursor:])
    counts = {len(p.options) for p in placeholders}
    if len(counts) > 1:
        listing = ", ".join(str(len(p.options)) for p in placeholders)
        raise template_error(
            template,
            f"placeholders have different option counts ({listing})",
            "placeholders fill in parallel: give every placeholder the same number of options",
        )
    return placeholders


def _check_visible(template: str, option: str) -> None:
    # Variants must differ only in what a reader of the template can see: an invisible
    # character (or a decomposed accent, which looks the same as the composed one) would
    # reach the model in one variant and not in the review, the card or the report.
    hidden = next((c for c in option if _invisible(c)), None)
    if hidden is not None:
        raise template_error(
            template,
            f"option '{option}' contains the invisible character {code_point(hidden)}",
            "delete it: every option must read exactly as it is sent",
        )
    if not unicodedata.is_normalized("NFC", option):
        raise template_error(
            template,
            f"option '{option}' is not in Unicode NFC form (a decomposed accent)",
            "retype it, or normalize the text to NFC (composed characters)",
        )


def _check_no_stray_braces(template: str, segment: str) -> None:
    if "{{" in segment or "}}" in segment:
        raise template_error(
            template, "has unbalanced '{{' / '}}'", "write placeholders as {{a/b}}"
        )


def expand(template: str) -> list[Variant]:
    """Expand ``template`` into its counterfactual variants, in option order.

    Raises:
        TemplateError: If the template is malformed (see :func:`parse`).
    """
    placeholders = parse(template)
    if not placeholders:
        return [Variant(DEFAULT_KEY, template, ())]
    n_variants = len(placeholders[0].options)
    first_words = [option.split()[0].lower() for option in placeholders[0].options]
    if len(set(first_words)) == n_variants:
        keys = first_words
    else:
        keys = [option.lower() for option in placeholders[0].options]
    variants = []
    for i in range(n_variants):
        pieces: list[str] = []
        cursor = 0
        for placeholder in placeholders:
            pieces.append(template[cursor : placeholder.start])
            pieces.append(placeholder.options[i])
            cursor = placeholder.end
        pieces.append(template[cursor:])
        options = tuple(p.options[i] for p in placeholders)
        variants.append(Variant(keys[i], "".join(pieces), options))
    return variants


def mask(template: str, token: str = "[GROUP]") -> str:
    """Replace every placeholder with ``token``.

    Used to embed a template for deduplication: two probes that differ only in which
    names or groups they swap in are the same question.
    """
    parse(template)
    return _PLACEHOLDER.sub(token, template)
