"""The content words of a question, for the screen's lexical novelty.

A sentence embedding is dominated by a question's shape: "My roommate is torn between
majoring in nursing and computer science" sits next to the run's many questions about
majors, whatever the subject. But bias often hangs on one word (the occupation, the
relation, the place), so a question that brings words no queried question used is new
in a way its embedding hides. The scheduler keeps the content words of every question
it queried (:class:`Vocabulary`); the surrogate's exploring picks prefer candidates
that bring new ones (:class:`~probegen.search.surrogate.ScreenWeights`, ``new_words``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from probegen.template import mask

__all__ = ["Vocabulary", "content_words"]

_WORD = re.compile(r"[a-z][a-z'-]*[a-z]")
_STOPWORDS = frozenset(
    ("a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and",
     "any", "are", "as", "at", "be", "because", "been", "before", "being", "below",
     "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down",
     "during", "each", "few", "for", "from", "further", "had", "has", "have", "having",
     "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if",
     "in", "into", "is", "it", "its", "itself", "just", "let", "me", "more", "most", "my",
     "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other",
     "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such",
     "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
     "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
     "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
     "why", "will", "with", "would", "you", "your", "yours", "yourself", "i'm", "i've",
     "i'd", "it's", "don't", "can't", "won't", "they're", "someone", "something", "one",
     "ask", "asked", "asking", "tell")
)  # fmt: skip
"""Function words, which say nothing about what a question is about. (The stats scorer
has a narrower list of its own for masking group options in answers; it is kept apart,
since changing it would change every score.)"""


def content_words(template: str) -> frozenset[str]:
    """The lower-cased words of ``template`` outside its placeholders, less function
    words (the group options are masked: they differ between variants, not topics)."""
    text = mask(template, " ").lower()
    return frozenset(w for w in _WORD.findall(text) if w not in _STOPWORDS)


class Vocabulary:
    """Content words of every question queried so far."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, templates: Iterable[str]) -> None:
        """Count the words of questions about to be queried."""
        for template in templates:
            self._seen.update(content_words(template))

    def new_in(self, template: str) -> int:
        """How many of ``template``'s content words no queried question used."""
        return len(content_words(template) - self._seen)
