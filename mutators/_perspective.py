"""The asker's own question retold by someone who knows them (first -> third person).

"I'm {{a man/a woman}} and I was accepted to a chemistry PhD program. Should I pick ..."
becomes "My {{male/female}} classmate was accepted to a chemistry PhD program. Should
{{he/she}} pick ...". Models often answer a person asking for themselves differently
from someone asking about a friend (more deference to the one, more paternalism to the
other), and the retold question is one the third-person operators (decisions about the
person, persona details, relations) can work on, which no first-person probe is.

Rewriting person and verb agreement by rule is only safe on plain sentences, so the
rewrite is conservative: it gives None on anything it cannot read with confidence (a
"we", a verb it cannot conjugate, an introduction other than "I'm ..." at a sentence
start, first-person words before the introduction). Words of a psychometric or refusal
framing around the question belong to whoever frames it and are left alone, as is the
"me" of a request to the model ("Give me a clear yes or no").
"""

from __future__ import annotations

import re

from probegen.corpora import FormKind

from ._persona import Persona, Tools
from ._text import at_sentence_start, capitalize, edit, fix_articles, masked, render_slot
from ._wording import head_after
from ._wrap import fixed_parts

__all__ = ["told_about"]

_INTRO = re.compile(r"\bI(?:['\u2019]m| am)\s")
_AND_I = re.compile(r",?\s+and\s+I(?:['\u2019](m|ve|d|ll))?\b")
_FIRST = re.compile(
    r"\b(?:I(?:['\u2019](?:m|ve|d|ll))?|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself"
    r"|[Ww]e(?:['\u2019](?:re|ve|d|ll))?|[Uu]s|[Oo]urs?|[Oo]urselves)\b"
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019]*")
_ADVERBS = frozenset(
    {"just", "also", "still", "never", "always", "often", "recently", "already", "really",
     "finally", "usually", "sometimes", "only", "even", "actually", "honestly", "probably",
     "currently", "definitely", "genuinely", "mostly", "rarely", "seriously", "kind", "sort"}
)  # fmt: skip
_UNCHANGED = frozenset(
    {"can", "could", "should", "would", "will", "might", "must", "may", "shall", "did",
     "can't", "couldn't", "shouldn't", "wouldn't", "won't", "didn't", "had", "hadn't"}
)  # fmt: skip
"""Verbs the same after "I" and after "he", "she" or "they"."""
_PAST = frozenset(
    {"got", "went", "made", "took", "saw", "found", "felt", "left", "lost", "paid", "told",
     "said", "thought", "bought", "came", "gave", "kept", "knew", "met", "ran", "sent",
     "spent", "won", "wrote", "heard", "became", "began", "brought", "chose", "fell",
     "held", "led", "meant", "sold", "stood", "understood", "taught", "caught", "fought",
     "grew", "drove", "ate", "forgot", "hurt", "quit", "broke", "spoke", "woke", "wore"}
)  # fmt: skip
_NOT_PAST = frozenset({"need", "feed", "proceed", "succeed", "exceed", "bleed", "breed", "speed"})
_SINGULAR = {"am": "is", "have": "has", "do": "does", "don't": "doesn't", "haven't": "hasn't"}
_PLURAL = {"am": "are", "was": "were", "wasn't": "weren't"}
_TO_MODEL = frozenset({"give", "tell", "help", "show", "let", "walk", "remind", "send", "teach"})
"""Requests to the model, whose "me" is whoever asks: "Give me a clear yes or no"."""
_AFTER_WOULD = frozenset({"like", "love", "prefer", "rather", "appreciate", "hate", "be", "say"})
_AFTER_HAD = frozenset({"been", "had", "gone", "done", "seen", "gotten", "never", "already"})
_BEFORE_REQUEST = frozenset({"and", "then", "please", "just", "also"})
_CONTRACTED = {"m": "am", "ve": "have", "ll": "will"}
_COORDINATED = frozenset(
    {"want", "have", "feel", "think", "wonder", "know", "believe", "wish", "am", "don't",
     "need", "plan", "hope", "love", "like", "live", "work", "do", "worry", "struggle"}
)  # fmt: skip
"""Verbs that share the asker's "I" after "and" or "but": "I'm single and want to adopt"."""
_NOUN_TOO = frozenset({"need", "plan", "hope", "love", "like", "live", "work", "worry",
                       "struggle"})  # fmt: skip
"""Of those, the ones a noun can be too ("school and work"): read as verbs only before "to"."""
_CLAUSE_END = re.compile(r"[.?!;:\"]|\bI\b")
_JOINT = re.compile(
    rf"\b(?:and|but)\s+(?:(?:{'|'.join(sorted(_ADVERBS))})\s+)*([A-Za-z'\u2019]+)"
    r"(?:\s+([A-Za-z'\u2019]+))?"
)
_THIRD = {
    "he": ("he", "him", "his", "himself"),
    "she": ("she", "her", "hers", "herself"),
    "they": ("they", "them", "their", "theirs", "themselves", "themself"),
}


def told_about(persona: Persona, tools: Tools) -> str | None:
    """The first-person probe of ``persona`` asked by someone who knows them, or None."""
    template, slot = persona.analysis.template, persona.slot
    low, high = _scope(template, slot.start)
    hidden = masked(template)
    intro = list(_INTRO.finditer(hidden, low, slot.start))
    if not intro or not at_sentence_start(template, intro[-1].start()):
        return None
    start = intro[-1].start()
    kept = _framing_spans(template, tools)
    if any(s < slot.end and start < e for s, e in kept):
        return None
    if _first_words(hidden, low, start, kept):
        return None  # "I" before the introduction: whose is it then?
    if _pronouns_taken(template[low:high], tools.pronoun(persona, "subject")):
        return None  # "her mother ... she": whose "she" would the persona's be?
    relation = tools.rng.choice(tools.framings.relations)
    head = head_after(template, slot.end, high)  # "I'm a {{gay/straight}} nurse and I"
    phrase_end = head[-1].end if head else slot.end
    joined = _AND_I.match(hidden, phrase_end)
    subject = _noun_phrase(persona, tools, relation, template[intro[-1].end() : phrase_end])
    if joined is not None:
        if subject is None:
            return None
        verb_at = joined.end()
        after_i = _CONTRACTED.get(joined.group(1) or "")
        if joined.group(1) == "d" and (after_i := _would_or_had(hidden, verb_at)) is None:
            return None
        edits = [(start, verb_at, subject)]
        # "my classmate" takes a singular verb, whatever the persona's pronoun.
        if after_i is not None:
            edits.append((verb_at, verb_at, " " + _SINGULAR.get(after_i, after_i)))
        elif (verb := _conjugated_after(hidden, verb_at, plural=False)) is not None:
            edits.append(verb)
        else:
            return None
        rest = joined.end()
    else:
        edits = [(start, intro[-1].end(), f"my {relation} is ")]
        rest = slot.end
    coordinated = _coordinated(hidden, rest, plural=False)
    if coordinated is None:
        return None
    edits.extend(coordinated)
    pronouns = _Pronouns(persona, tools)
    for match in _FIRST.finditer(hidden, rest, high):
        if _inside(match.start(), kept):
            continue
        found = pronouns.replace(template, hidden, match)
        if found is None:
            return None
        edits.extend(found)
    for index, (s, e, text) in enumerate(edits):
        if at_sentence_start(template, s):
            edits[index] = (s, e, capitalize(text))
    child = fix_articles(edit(template, edits))
    return child if tools.valid(child, persona.analysis.attribute) else None


def _pronouns_taken(text: str, subject: str) -> bool:
    """Whether ``text`` already uses, for someone else, a pronoun the persona will get."""
    literal = {w.lower() for w in re.findall(r"[A-Za-z]+", re.sub(r"\{\{.*?\}\}", " ", text))}
    mine = {p for option in re.findall(r"[a-z]+", subject) for p in _THIRD.get(option, ())}
    return bool(literal & mine)


def _scope(template: str, pos: int) -> tuple[int, int]:
    """The quoted question ``pos`` sits in, or the whole template."""
    quotes = [m.start() for m in re.finditer('"', template)]
    before = [q for q in quotes if q < pos]
    after = [q for q in quotes if q > pos]
    if len(before) % 2 == 1 and after:
        return before[-1] + 1, after[0]
    return 0, len(template)


def _framing_spans(template: str, tools: Tools) -> list[tuple[int, int]]:
    """Where the template holds a framing's own words (the framer's, not the persona's)."""
    families = [*tools.framings.psychometric.values(), *tools.framings.refusal_triggers.values()]
    spans = []
    for part in (part for family in families for w in family for part in fixed_parts(w)):
        if (at := template.find(part)) >= 0:
            spans.append((at, at + len(part)))
    return spans


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(s <= pos < e for s, e in spans)


def _first_words(hidden: str, low: int, high: int, kept: list[tuple[int, int]]) -> bool:
    return any(not _inside(m.start(), kept) for m in _FIRST.finditer(hidden, low, high))


def _word_before(hidden: str, pos: int) -> re.Match[str] | None:
    """The word just before ``pos`` (group 1) with the spaces after it, if only spaces follow."""
    return re.search(r"([A-Za-z']+)\s+$", hidden[max(0, pos - 16) : pos])


def _noun_phrase(persona: Persona, tools: Tools, relation: str, phrase: str) -> str | None:
    """Who the persona is to the new asker: "my {{male/female}} classmate"."""
    bare = re.sub(r"^(?:an?|the)\s+", "", phrase.strip(), flags=re.IGNORECASE)
    just_the_group = bare == render_slot(persona.slot.options) or re.fullmatch(
        r"\{\{[^}]*\}\}", bare
    )
    if just_the_group and persona.kind in (FormKind.NAME, FormKind.SURFACE_FORM):
        return tools.as_third_person(persona, relation)
    if not phrase.strip() or phrase.rstrip()[-1] in ",.;:":
        return None
    return f"my {relation}, {phrase.strip()},"


def _conjugated_after(hidden: str, pos: int, plural: bool) -> tuple[int, int, str] | None:
    """The edit that makes the verb after ``pos`` agree with a third-person subject."""
    for word in _WORD.finditer(hidden, pos):
        if hidden[pos : word.start()].strip():
            return None  # punctuation or a placeholder, not a verb
        lowered = word.group(0).lower().replace("\u2019", "'")
        if lowered in _ADVERBS:
            pos = word.end()
            continue
        agreed = _agree(lowered, plural)
        if agreed is None:
            return None
        return word.start(), word.end(), agreed
    return None


def _coordinated(hidden: str, pos: int, plural: bool) -> list[tuple[int, int, str]] | None:
    """The edits that make the verbs sharing the subject before ``pos`` agree with it
    ("is single and wants to adopt"), up to the clause's end or the next "I"; None where
    a word after "and" could be a verb or a noun ("school and work")."""
    stop = _CLAUSE_END.search(hidden, pos)
    edits = []
    for joint in _JOINT.finditer(hidden, pos, stop.start() if stop else len(hidden)):
        verb, after = joint.group(1).lower().replace("\u2019", "'"), joint.group(2) or ""
        if verb not in _COORDINATED or after == "I":
            continue  # not a verb we know, or "and do I ...", whose "I" is read itself
        if verb in _NOUN_TOO and after.lower() != "to":
            return None
        agreed = _agree(verb, plural)
        if agreed is None:
            return None
        if agreed != verb:
            edits.append((joint.start(1), joint.end(1), agreed))
    return edits


def _agree(verb: str, plural: bool) -> str | None:
    if verb in _UNCHANGED or verb in _PAST or (verb.endswith("ed") and verb not in _NOT_PAST):
        return verb
    if plural:
        return _PLURAL.get(verb, verb)
    if verb in _SINGULAR:
        return _SINGULAR[verb]
    if verb in ("was", "wasn't"):
        return verb
    if not verb.isalpha() or verb.endswith("s"):
        return None  # "I's", "I guess"? a noun, most likely: not a sentence we can read
    if verb.endswith(("sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _asks_the_model(template: str, hidden: str, start: int) -> bool:
    """Whether the "me" at ``start`` is the object of a request to the model."""
    before = _word_before(hidden, start)
    if before is None or before.group(1).lower() not in _TO_MODEL:
        return False
    verb_at = start - len(before.group(0))
    earlier = re.search(r"([A-Za-z']+)\W*$", hidden[max(0, verb_at - 16) : verb_at])
    # "Give me", "and tell me", "please help me": an imperative; "to let me" is not.
    return at_sentence_start(template, verb_at) or (
        earlier is not None and earlier.group(1).lower() in _BEFORE_REQUEST
    )


def _would_or_had(hidden: str, end: int) -> str | None:
    """What the "'d" ending at ``end`` stands for: "I'd like" would, "I'd been" had."""
    following = _WORD.match(hidden, end + 1)
    verb = following.group(0).lower() if following else ""
    if verb in _AFTER_WOULD:
        return "would"
    if verb in _AFTER_HAD or (verb.endswith("ed") and verb not in _NOT_PAST):
        return "had"
    return None


class _Pronouns:
    """The persona's pronouns, and the edits that put them where "I", "me", "my" were."""

    def __init__(self, persona: Persona, tools: Tools) -> None:
        self.persona, self.tools = persona, tools
        subject = tools.pronoun(persona, "subject")
        options = re.findall(r"[^{}/]+", subject)
        # "{{he/she/they}}" needs "wants" and "want" at once: no single verb form fits.
        self.mixed = "they" in options and len(options) > 1
        self.plural = options == ["they"]

    def replace(
        self, template: str, hidden: str, match: re.Match[str]
    ) -> list[tuple[int, int, str]] | None:
        word = match.group(0).replace("\u2019", "'")
        lowered = word.lower()
        start, end = match.start(), match.end()
        if lowered.startswith(("we", "us", "our")) or lowered == "mine":
            return None
        if lowered == "me":
            return (
                []
                if _asks_the_model(template, hidden, start)
                else [(start, end, self.tools.pronoun(self.persona, "object"))]
            )
        if lowered == "my":
            return [(start, end, self.tools.pronoun(self.persona, "possessive"))]
        if lowered == "myself":
            return [(start, end, self.tools.pronoun(self.persona, "reflexive"))]
        return self._subject(hidden, word, start, end)

    def _subject(
        self, hidden: str, word: str, start: int, end: int
    ) -> list[tuple[int, int, str]] | None:
        they = self.tools.pronoun(self.persona, "subject")
        contracted = _CONTRACTED.get(word[2:]) if len(word) > 1 else None
        if word[2:] == "d":
            aux = _would_or_had(hidden, end)
            return None if aux is None else [(start, end, f"{they} {aux}")]
        if contracted is not None:
            verb = _agree(contracted, self.plural)
            coordinated = _coordinated(hidden, end, self.plural)
            if (
                verb is None
                or coordinated is None
                or (self.mixed and (verb != contracted or coordinated))
            ):
                return None
            return [(start, end, f"{they} {verb}"), *coordinated]
        previous = _word_before(hidden, start)
        if previous is not None:  # "should I", "do I", "am I"
            aux = previous.group(1)
            if aux.lower() in (*_SINGULAR, *_PLURAL, *_UNCHANGED, "was", "wasn't"):
                agreed = _agree(aux.lower(), self.plural)
                if agreed is None or (self.mixed and agreed != aux.lower()):
                    return None
                aux_start = start - len(previous.group(0))
                fixed = agreed.capitalize() if aux[:1].isupper() else agreed
                return [(aux_start, aux_start + len(aux), fixed), (start, end, they)]
        agreement = _conjugated_after(hidden, end, self.plural)
        coordinated = _coordinated(hidden, end, self.plural)
        if agreement is None or coordinated is None:
            return None
        changed = [agreement, *coordinated]
        if self.mixed and any(hidden[at:stop].lower() != verb for at, stop, verb in changed):
            return None
        return [(start, end, they), *changed]
