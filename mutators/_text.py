"""Template surgery shared by the operators: placeholders, sentences, words, articles.

Everything here is plain string handling on CAB templates (see :mod:`probegen.template`).
Offsets always refer to the template string itself, placeholders included, so an
operator can find a spot with one helper and edit it with another.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from probegen import template as tpl

__all__ = [
    "DETERMINERS",
    "LINKING_WORDS",
    "MODALS",
    "PRE_ADJECTIVES",
    "NounPhrase",
    "Slot",
    "Word",
    "article_for",
    "at_sentence_start",
    "capitalize",
    "determiner_before",
    "edit",
    "fix_articles",
    "is_first_person",
    "masked",
    "noun_phrase_before",
    "render_slot",
    "sentence_spans",
    "slots",
    "split_request",
    "they_fits",
    "words",
]

DETERMINERS = frozenset(
    {"a", "an", "the", "my", "our", "your", "his", "her", "their", "one", "this", "that"}
)
"""Words that open a noun phrase such as "my new neighbor"."""
MODALS = frozenset(
    {"should", "can", "could", "would", "will", "might", "must", "may", "did", "do", "does"}
)
"""Auxiliaries after which a singular "they" needs no verb agreement ("should they")."""
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "mx", "dr", "st", "jr", "sr", "vs", "e.g", "i.e"})
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_BOUNDARY = re.compile(r"""[.?!]["')\]]*\s+""")
_WORD = re.compile(r"[\w$%][\w'\u2019%$,.-]*[\w%]|[\w$%]")


@dataclass(frozen=True)
class Slot:
    """One placeholder of a template.

    Attributes:
        index: Its position among the template's placeholders.
        start: Offset of ``{{``.
        end: Offset just past ``}}``.
        options: Its options, suffix propagation applied.
    """

    index: int
    start: int
    end: int
    options: tuple[str, ...]


@dataclass(frozen=True)
class Word:
    """A word of the template's literal text, with its offsets."""

    start: int
    end: int
    text: str

    @property
    def lower(self) -> str:
        """The word in lowercase."""
        return self.text.lower()


def slots(template: str) -> list[Slot]:
    """The placeholders of ``template`` (raises TemplateError when malformed)."""
    return [Slot(i, p.start, p.end, p.options) for i, p in enumerate(tpl.parse(template))]


def render_slot(options: Iterable[str]) -> str:
    """``{{a/b/...}}`` for ``options``."""
    return "{{" + "/".join(options) + "}}"


def edit(template: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """Apply non-overlapping ``(start, end, replacement)`` edits, then tidy the spacing."""
    text = template
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + replacement + text[end:]
    # Removing a word leaves doubled spaces or a space before punctuation behind.
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r" +([,.?!;:])", r"\1", text)
    text = re.sub(r",([,.?!])", r"\1", text)
    return text.strip()


def masked(template: str) -> str:
    """``template`` with each placeholder replaced by a same-length run of letters.

    Lets sentence and word scanning treat a placeholder as one opaque word without
    shifting offsets.
    """
    return _PLACEHOLDER.sub(lambda m: "Q" * len(m.group(0)), template)


def words(template: str, start: int = 0, end: int | None = None) -> list[Word]:
    """Words of the literal text between ``start`` and ``end`` (placeholders skipped)."""
    hidden = masked(template)
    stop = len(template) if end is None else end
    found = []
    for match in _WORD.finditer(hidden, start, stop):
        if set(match.group(0)) == {"Q"} and template[match.start()] == "{":
            continue
        found.append(Word(match.start(), match.end(), template[match.start() : match.end()]))
    return found


def sentence_spans(template: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence, whitespace excluded; a placeholder never splits."""
    hidden = masked(template)
    spans = []
    start = 0
    for match in _BOUNDARY.finditer(hidden):
        before = re.search(r"([\w.]+)[.?!]\W*$", hidden[start : match.start() + 1])
        if before and before.group(1).lower().rstrip(".") in _ABBREVIATIONS:
            continue
        nxt = hidden[match.end() : match.end() + 1]
        if nxt and not (nxt.isupper() or nxt.isdigit() or nxt in "\"'Q$"):
            continue
        spans.append((start, match.start() + len(match.group(0).rstrip())))
        start = match.end()
    if start < len(template):
        spans.append((start, len(template.rstrip())))
    return [(s, e) for s, e in spans if template[s:e].strip()]


def at_sentence_start(template: str, pos: int) -> bool:
    """Whether ``pos`` is where a sentence begins (only quotes may come between)."""
    head = template[:pos].rstrip(" \"'")
    return not head or head[-1] in ".?!:"


def capitalize(text: str) -> str:
    """``text`` with its first letter uppercased (inside a leading placeholder too)."""
    if text.startswith("{{"):
        body = text[2 : text.index("}}")]
        options = [capitalize(o) for o in body.split("/")]
        return render_slot(options) + text[text.index("}}") + 2 :]
    return text[:1].upper() + text[1:]


def article_for(word: str) -> str:
    """``a`` or ``an`` before ``word``, by its sound as far as spelling tells."""
    lowered = word.lower()
    if re.match(r"(8|11|18)\D|(8|11|18)$|80|8\d-", lowered):
        return "an"
    if lowered[:1].isdigit():
        return "a"
    if lowered.startswith(("one", "once", "uni", "use", "usu", "eu", "ur")):
        return "a"
    if lowered.startswith(("hour", "honest", "heir")):
        return "an"
    if word.isupper() and len(word) > 1:  # an acronym is read letter by letter
        return "an" if lowered[0] in "aefhilmnorsx" else "a"
    return "an" if lowered[:1] in "aeiou" else "a"


_ARTICLE_BEFORE_SLOT = re.compile(r"\b([Aa]n?) (\{\{.*?\}\})", re.DOTALL)
_ARTICLE_BEFORE_WORD = re.compile(r"\b([Aa]n?) ([A-Za-z0-9][\w-]*)")


def fix_articles(template: str) -> str:
    """Make every ``a``/``an`` agree with what follows it.

    Before a placeholder whose options need different articles, the article moves into
    the options (``a {{Black/Asian}}`` -> ``{{a Black/an Asian}}``).
    """

    def before_slot(match: re.Match[str]) -> str:
        word, slot = match.group(1), match.group(2)
        options = slot[2:-2].split("/")
        wanted = [article_for(o.strip()) for o in options]
        if len(set(wanted)) == 1:
            return _same_case(word, wanted[0]) + " " + slot
        inner = [f"{_same_case(word, w)} {o.strip()}" for w, o in zip(wanted, options, strict=True)]
        return render_slot(inner)

    def before_word(match: re.Match[str]) -> str:
        word, following = match.group(1), match.group(2)
        if following.lower() in {"lot", "few", "little", "bit", "couple"}:
            return match.group(0)
        return _same_case(word, article_for(following)) + " " + following

    template = _ARTICLE_BEFORE_SLOT.sub(before_slot, template)
    return _ARTICLE_BEFORE_WORD.sub(before_word, template)


def _same_case(model: str, word: str) -> str:
    return word.capitalize() if model[:1].isupper() else word


def split_request(template: str, request_starts: Sequence[str]) -> tuple[str, str] | None:
    """Split ``template`` into its context and its trailing request.

    The request is the longest run of final sentences that are questions or start like a
    request (``request_starts``); at least one sentence must stay in the context.

    Returns:
        ``(context, request)``, or None when there is no such split.
    """
    spans = sentence_spans(template)
    if len(spans) < 2:
        return None
    cut = len(spans)
    while cut > 1:
        start, end = spans[cut - 1]
        sentence = template[start:end].strip()
        lowered = sentence.lower()
        if sentence.endswith("?") or lowered.startswith(tuple(request_starts)):
            cut -= 1
            continue
        break
    if cut == len(spans):
        return None
    context = template[: spans[cut - 1][1]].strip()
    request = template[spans[cut][0] :].strip()
    return context, request


PRE_ADJECTIVES = frozenset(
    {"new", "best", "close", "former", "old", "dear", "good", "longtime", "future", "top"}
)
"""Words that stay before an inserted group adjective ("my best {{male/female}} friend")."""
LINKING_WORDS = frozenset(
    {
        "is", "are", "was", "were", "be", "been", "am", "has", "have", "had", "to", "of",
        "for", "from", "with", "about", "and", "or", "but", "that", "who", "whose",
        "which", "named", "called", "in", "on", "at", "by", "as", "if", "i", "i'm", "me",
        "pick", "hire", "than", "like", "meet", "invite", "approve", "admit", "accept",
        "promote", "reject", "interview", "recommend", "choose", "select", "ask", "tell",
        "help", "trust", "fire", "refer",
    }
)  # fmt: skip
"""Prepositions, auxiliaries, conjunctions and verbs that end a noun phrase. The verbs are
those a decision asks about a person with: without them "Should the bank approve
{{Neil/Linda}}'s loan?" read "the bank approve" as the name's noun phrase."""
_NOT_SELF = frozenset({"to", "for", "with", "about", "of", "at", "by", "on", "in", "and"})
_FIRST_PERSON = re.compile(
    r"\b(?:I['\u2019]m|I am|As an?|We['\u2019]re|[Ww]e are|and I are|I come from)"
    r"(?:\s+[\w'\u2019-]+){0,6}\s*$"
)


@dataclass(frozen=True)
class NounPhrase:
    """A noun phrase that ends right before some position ("my new neighbor").

    Attributes:
        start: Offset of its first word (the determiner, if any).
        end: Offset just past its last word.
        det: The determiner or possessive ("my", "a", "daughter's").
        words: The words after the determiner.
        insert_at: Where an adjective goes: after the determiner and any
            :data:`PRE_ADJECTIVES`, or before the head when every word is one.
    """

    start: int
    end: int
    det: Word
    words: tuple[Word, ...]
    insert_at: int


def noun_phrase_before(template: str, pos: int, max_words: int = 4) -> NounPhrase | None:
    """The noun phrase that ends at ``pos`` (optionally followed by a comma), or None."""
    sentence_start = max((s for s, _ in sentence_spans(template) if s <= pos), default=0)
    found = words(template, sentence_start, pos)
    if not found or not re.fullmatch(r"\s*,?\s*", template[found[-1].end : pos]):
        return None
    collected: list[Word] = []
    for word in reversed(found[-(max_words + 1) :]):
        lowered = word.lower
        if lowered in DETERMINERS or re.search(r"['\u2019]s$", lowered):
            if not collected:
                return None
            for before, after in itertools.pairwise(collected):
                if template[before.end : after.start] != " ":
                    return None
            if template[word.end : collected[0].start] != " ":
                return None
            insert_at = collected[0].start
            for candidate in collected[:-1]:
                if candidate.lower in PRE_ADJECTIVES or any(c.isdigit() for c in candidate.text):
                    insert_at = candidate.end + 1
                else:
                    break
            return NounPhrase(word.start, collected[-1].end, word, tuple(collected), insert_at)
        if lowered in LINKING_WORDS or word.text[:1].isupper() or "$" in word.text:
            return None
        collected.insert(0, word)
    return None


def is_first_person(template: str, pos: int) -> bool:
    """Whether the sentence before ``pos`` has the asker describing themselves ("I'm a").

    The words between "I'm" and ``pos`` may not include a verb in -ing or a preposition
    that starts another phrase ("I'm reviewing a resume from ..." is about someone else).
    """
    sentence_start = max((s for s, _ in sentence_spans(template) if s <= pos), default=0)
    match = _FIRST_PERSON.search(masked(template)[sentence_start:pos])
    if not match:
        return False
    between = match.group(0).split()[1:]
    return not any(
        (w.lower().endswith("ing") and len(w) > 4) or w.lower() in _NOT_SELF for w in between
    )


def determiner_before(
    template: str, before: Sequence[Word], pos: int
) -> tuple[Word | None, list[Word]]:
    """The determiner of the noun phrase ending at ``pos``, and the words after it.

    Args:
        template: The template.
        before: The words of the sentence before ``pos`` (see :func:`words`).
        pos: Where the phrase ends (usually a placeholder's start).
    """
    for back in range(1, min(4, len(before)) + 1):
        word = before[-back]
        if word.lower in LINKING_WORDS:
            break
        if word.lower in DETERMINERS:
            pre = list(before[len(before) - back + 1 :])
            gap = template[word.end : pos]
            return (word, pre) if re.fullmatch(r"[\w\s'-]*", gap) else (None, [])
    return None, []


def they_fits(template: str, end: int) -> bool:
    """Whether a singular "they" ending at ``end`` needs no other verb form.

    True before an auxiliary ("they should") or a verb whose form is the same for "they"
    ("they want"); False before "is", "was", "has", "does" or another verb in -s.
    """
    following = words(template, end, end + 30)
    verb = following[0].lower if following else ""
    if verb in MODALS:
        return True
    return not (verb in ("is", "was", "has", "does") or (verb.endswith("s") and len(verb) > 3))
