"""``Embedder.encode_alone``: a text's vector the same to the last bit whatever it is
embedded with, which the ``stats`` scorer's sentence reading relies on."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from probegen.embedding_cache import CACHE_FILE, EmbeddingCache
from probegen.embeddings import ALONE_ROWS, Embedder, Vectors
from probegen.scoring.stats import answer_vectors

SENTENCES = [
    "I would be cautious about leaving children with this candidate.",
    "Ask for the number you want.",
    "Hi.",
    "",
    "Families often feel more at ease with someone who fits the usual profile for this "
    "role, and references from other parents matter more than formal training here.",
    "Name a specific salary figure early in the conversation, and anchor it on the market "
    "data for the role, your experience and the cost of living where the job is based.",
    "Avoid naming a number first.",
    "Chest pain that spreads to the arm should be seen by a doctor today.",
    # Past MiniLM's 256 word pieces: cut there, at the widest pass.
    "word " * 300,
] + [f"Sentence number {i} says something about topic {i % 7}." for i in range(18)]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def alone(embedder: Embedder) -> dict[str, Vectors]:
    """Each sentence's vector, from one call embedding all of them."""
    return dict(zip(SENTENCES, embedder.encode_alone(SENTENCES), strict=True))


def test_a_texts_vector_does_not_depend_on_its_companions(
    embedder: Embedder, alone: dict[str, Vectors]
) -> None:
    for text in (SENTENCES[2], SENTENCES[5], SENTENCES[8]):  # short, long, past the window
        assert np.array_equal(embedder.encode_alone([text])[0], alone[text]), text[:40]
    rng = random.Random(0)
    for size in (2, ALONE_ROWS - 1, ALONE_ROWS, ALONE_ROWS + 1):
        picked = rng.sample(SENTENCES, size)
        for text, vector in zip(picked, embedder.encode_alone(picked), strict=True):
            assert np.array_equal(vector, alone[text]), (size, text[:40])


def test_the_vectors_are_the_models_unit_vectors(
    embedder: Embedder, alone: dict[str, Vectors]
) -> None:
    exact = np.stack([alone[text] for text in SENTENCES])
    batched = embedder.encode(SENTENCES)
    assert exact.dtype == np.float32
    assert exact.shape == batched.shape
    np.testing.assert_allclose(np.linalg.norm(exact, axis=1), 1.0, atol=1e-6)
    # The same vectors as a batched encode gives, but for the last bits.
    assert float(np.min(np.sum(exact * batched, axis=1))) > 0.99999
    assert embedder.encode_alone([]).shape == (0, embedder.dimension)


def test_the_exact_vectors_are_cached_apart(tmp_path: Path) -> None:
    first = Embedder(cache=EmbeddingCache(tmp_path / CACHE_FILE))
    exact = first.encode_alone(SENTENCES[:5])
    batched = first.encode(SENTENCES[:5])
    again = Embedder(cache=EmbeddingCache(tmp_path / CACHE_FILE))
    assert np.array_equal(again.encode_alone(SENTENCES[:5]), exact)
    assert np.array_equal(again.encode(SENTENCES[:5]), batched)
    assert again.cache is not None
    assert again.cache.hits == 10


def test_threads_embedding_both_ways_at_once_do_not_fail(
    embedder: Embedder, alone: dict[str, Vectors]
) -> None:
    """The scorer embeds in worker threads, beside the index's batched calls; a fast
    tokenizer whose padding settings two threads change at once raises "Already
    borrowed"."""
    problems: list[str] = []

    def work(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for _ in range(3):
                picked = rng.sample(SENTENCES, 10)
                if worker % 2:
                    got = embedder.encode_alone(picked)
                    problems.extend(
                        t[:30]
                        for t, v in zip(picked, got, strict=True)
                        if not np.array_equal(v, alone[t])
                    )
                else:
                    embedder.encode(picked)
        except Exception as error:  # reported below, with its thread
            problems.append(f"worker {worker}: {error!r}")

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []


class _OnePerPass:
    """An embedder without ``encode_alone``: the scorer asks it for one text a pass."""

    name = "one-per-pass"
    dimension = 2

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        self.batch_sizes.append(batch_size)
        return np.tile(np.array([1.0, 0.0], dtype=np.float32), (len(texts), 1))


def test_the_sentence_reading_asks_for_exact_vectors(embedder: Embedder) -> None:
    answers = ["Ask for the number you want. Then wait.", "Avoid naming a number first."]
    sentences = ["Ask for the number you want.", "Then wait.", "Avoid naming a number first."]
    vectors = answer_vectors(embedder, answers, sentences=True)
    exact = embedder.encode_alone(sentences)
    weights = np.array([6.0, 2.0], dtype=np.float32)
    first = weights @ exact[:2]
    np.testing.assert_allclose(vectors[0], first / np.linalg.norm(first), atol=1e-6)
    np.testing.assert_allclose(vectors[1], exact[2], atol=1e-6)

    other = _OnePerPass()
    answer_vectors(other, answers, sentences=True)
    assert other.batch_sizes == [1]
