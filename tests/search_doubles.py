"""Test doubles for the search tests: a fast embedder, a scripted helper model, an archive
filled with seed probes, and a fake measurement."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence

import numpy as np

from probegen.corpora import Corpora
from probegen.embeddings import Vectors
from probegen.models import ChatMessage, GenerateConfig, Response, RetryHint
from probegen.probe import Probe
from probegen.scoring.base import Score
from probegen.search.archive import Archive, DescriptorSpace, Elite
from probegen.search.scheduler import Candidate, Evaluated

__all__ = [
    "HashEmbedder",
    "ScriptedHelper",
    "fill",
    "gender_seeds",
    "groups_of",
    "score",
    "told",
]

_WORD = re.compile(r"[a-z]+")


class HashEmbedder:
    """Bag-of-words vectors hashed into 256 dimensions: shared words mean similar
    vectors, instantly and without a model (an :class:`~probegen.embeddings.Embedder`
    stand-in for :class:`~probegen.index.EmbeddingIndex`)."""

    dimension = 256
    name = "hash"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        self.calls += 1
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            rows[i, 0] = 0.5  # no zero vector, whatever the text
            for word in _WORD.findall(text.lower()):
                slot = int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % (self.dimension - 1)
                rows[i, 1 + slot] += 1.0
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        return rows


class ScriptedHelper:
    """A deterministic chat model (ChatModel protocol): answers from a script of canned
    replies, in order (the last one repeats); an Exception in the script is raised.
    Records every request."""

    spec = "scripted"
    identity = "scripted"
    max_concurrency = 1

    def __init__(self, replies: Sequence[str | Exception]) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[list[ChatMessage], GenerateConfig]] = []

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        self.requests.append((list(messages), config))
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return Response(text=reply)

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        return None

    async def aclose(self) -> None:
        return None


def gender_seeds(corpora: Corpora) -> list[Probe]:
    """The shipped gender seed probes."""
    return [s.to_probe() for s in corpora.seeds if s.attribute == "gender"]


def groups_of(probe: Probe, corpora: Corpora) -> tuple[str, ...]:
    """The sorted groups a probe's variants name."""
    return tuple(sorted({v.group for v in probe.grouped_variants(corpora)}))


def fill(
    archive: Archive,
    probes: Sequence[Probe],
    corpora: Corpora,
    space: DescriptorSpace,
    fitness: Callable[[int], float] = lambda i: 0.25 * (i % 3),
) -> list[Elite]:
    """Add ``probes`` to ``archive`` with the given fitness by position; returns them."""
    elites = [
        Elite(p, fitness(i), space.descriptor(p, groups_of(p, corpora)), 0, 0.5)
        for i, p in enumerate(probes)
    ]
    for elite in elites:
        archive.add(elite)
    return elites


def score(fitness: float | None) -> Score:
    """A stats-like score with this fitness (None: unscorable)."""
    if fitness is None:
        return Score.unscorable("fake", "no answers")
    return Score(scorer="fake", fitness=fitness, bias=1 + round(4 * fitness))


def told(
    candidates: Sequence[Candidate],
    corpora: Corpora,
    fitness: Callable[[Probe], float | None],
    queries: int = 10,
) -> list[Evaluated]:
    """Fake measurements of ``candidates``: ``fitness(probe)`` at ``queries`` each."""
    return [
        Evaluated(c, score(fitness(c.probe)), groups_of(c.probe, corpora), queries)
        for c in candidates
    ]


def keyword_fitness(*words: str) -> Callable[[Probe], float]:
    """Fitness 0.75 for a probe whose template mentions one of ``words``, else 0."""

    def fitness(probe: Probe) -> float:
        text = probe.template.lower()
        return 0.75 if any(w in text for w in words) else 0.0

    return fitness


def seeded(seed: int) -> random.Random:
    """A seeded rng (named, so tests read as what they do)."""
    return random.Random(seed)
