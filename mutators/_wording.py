"""Small wording helpers: normalizing placeholders and reading the noun after one."""

from __future__ import annotations

import re
from collections.abc import Sequence

from probegen.errors import ProbegenError
from probegen.mutation import keep_options_literal

from ._persona import Tools
from ._text import Word, edit, render_slot, slots, words

__all__ = ["factor_slots", "head_after", "is_plural", "strip_articles"]

_HEAD_STOP = frozenset(
    {
        "in", "on", "at", "with", "from", "for", "of", "to", "by", "about", "into", "over",
        "under", "after", "before", "near", "and", "or", "but", "so", "who", "whose",
        "that", "which", "is", "are", "was", "were", "has", "have", "had", "i", "me", "my",
        "a", "an", "the", "this", "than", "as", "when", "where", "while", "because",
    }
)  # fmt: skip
_ADVERBS = frozenset(
    {"just", "also", "still", "never", "always", "often", "recently", "already", "now",
     "then", "really", "finally", "usually", "sometimes"}
)  # fmt: skip
_PLURAL_WORDS = frozenset({"people", "women", "men", "children", "folks", "kids", "couples"})


def strip_articles(options: Sequence[str]) -> tuple[list[str], str | None]:
    """Options without a leading a/an, and the article if any option had one."""
    bare, article = [], None
    for option in options:
        match = re.match(r"(an?)\s+(.+)", option, re.IGNORECASE)
        if match:
            # Keep the case: "{{A white/An Asian}}" opens a sentence.
            article = "A" if match.group(1)[0].isupper() else "a"
            bare.append(match.group(2))
        else:
            bare.append(option)
    return bare, article


def factor_slots(
    template: str, attribute: str, tools: Tools, *, written_from: Sequence[str] = ()
) -> str:
    """Move words every option shares out of the braces, where the corpora still accept it.

    ``{{a man/a woman}}`` -> ``a {{man/woman}}``; ``{{Christian family/Muslim family}}``
    -> ``{{Christian/Muslim}} family``; ``{{a Black/an Asian}} student`` -> ``a
    {{Black/Asian}} student`` (``fix_articles`` moves a mixed article back in later). The
    variants are unchanged; operators then see one shape for one construction.

    An operator factoring a template it has just written passes the templates it wrote it
    from as ``written_from``: its new placeholders are first protected from CAB's suffix
    propagation (:func:`~probegen.mutation.keep_options_literal`). Read with propagation,
    ``{{man/woman/non-binary person}}`` shares the word "person", and factoring it out
    would publish "A man person" as a variant.
    """
    if written_from:
        template = keep_options_literal(template, written_from)
    try:
        found = slots(template)
    except ProbegenError:  # malformed templates are the validator's business
        return template
    for slot in reversed(found):
        bare, article = strip_articles(slot.options)
        if (
            article is None
            or len(bare) != len(slot.options)
            or any(not re.match(r"an?\s", o, re.IGNORECASE) for o in slot.options)
        ):
            bare, article = list(slot.options), None
        split = [option.split(" ") for option in bare]
        head = 0
        while all(len(s) > head + 1 for s in split) and len({s[head] for s in split}) == 1:
            head += 1
        tail = 0
        while (
            all(len(s) > head + tail + 1 for s in split) and len({s[-1 - tail] for s in split}) == 1
        ):
            tail += 1
        core = [" ".join(s[head : len(s) - tail]) for s in split]
        prefix = " ".join(([article] if article else []) + split[0][:head])
        suffix = " ".join(split[0][len(split[0]) - tail :]) if tail else ""
        if not prefix and not suffix:
            continue
        replacement = " ".join(p for p in (prefix, render_slot(core), suffix) if p)
        candidate = edit(template, [(slot.start, slot.end, replacement)])
        if tools.valid(candidate, attribute):
            template = candidate
    return template


def head_after(template: str, pos: int, end: int, limit: int = 3) -> list[Word]:
    """The noun right after ``pos`` ("{{Black}} college student" -> college, student)."""
    head: list[Word] = []
    cursor = pos
    for index, word in enumerate(words(template, pos, end)[:limit]):
        if template[cursor : word.start] != " ":
            break
        lowered = word.lower
        if (
            lowered in _HEAD_STOP
            or lowered in _ADVERBS
            or not word.text[:1].islower()
            or (lowered.endswith("ing") and len(lowered) > 5)
            or (lowered.endswith("ed") and len(lowered) > 4)
            or (index > 0 and lowered.endswith("ly"))
            or any(c.isdigit() or c in "$%," for c in lowered)
            # After the first word, a word in -s is a verb ("grandfather keeps").
            or (index > 0 and is_plural(lowered))
        ):
            break
        head.append(word)
        cursor = word.end
    return head


def is_plural(word: str) -> bool:
    """Whether ``word`` looks like a plural noun."""
    lowered = word.lower()
    if lowered in _PLURAL_WORDS:
        return True
    return lowered.endswith("s") and not lowered.endswith(("ss", "us", "is", "'s", "\u2019s"))
