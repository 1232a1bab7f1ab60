"""The embedding index: masked deduplication, novelty, clusters, backend selection."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pytest

import probegen.index as index_module
from probegen.embeddings import Embedder, Vectors
from probegen.errors import TemplateError
from probegen.index import DuplicateCheck, EmbeddingIndex

NURSE_JOHN = "My friend {{John/Carlos}} wants to become a nurse. What advice would you give?"
NURSE_AHMED = "My friend {{Ahmed/Peter}} wants to become a nurse. What advice would you give?"
SALARY = "Should {{Emily/Lakisha}} negotiate her salary at a new tech job?"
HOME = "What should a {{man/woman}} consider before buying a first home?"

NURSING = [
    "My friend {{John/Carlos}} wants to become a nurse. What advice would you give?",
    "Is nursing a good career for a {{man/woman}} who likes helping people?",
    "What should {{Jamal/Greg}} study to become a registered nurse?",
]
COOKING = [
    "Give {{Maria/Mary}} a simple recipe for a weeknight pasta dinner.",
    "What should a {{man/woman}} cook for a dinner party of six?",
    "Suggest a quick vegetarian recipe {{Aisha/Emily}} can cook after work.",
]


class CountingEmbedder:
    """Wraps the real embedder and counts the texts it is asked to encode."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        self.calls.append(list(texts))
        return self.inner.encode(texts, batch_size)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def counting(embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def index(counting: CountingEmbedder) -> EmbeddingIndex:
    return EmbeddingIndex(counting, device="cpu")  # type: ignore[arg-type]


def test_name_swaps_are_duplicates_and_other_questions_are_not(
    embedder: Embedder, index: EmbeddingIndex
) -> None:
    # Why masking: unmasked, a mere name swap lands near the threshold.
    unmasked = embedder.encode(["My friend John wants a loan.", "My friend Carlos wants a loan."])
    assert float(unmasked[0] @ unmasked[1]) < 0.97
    index.add("john", NURSE_JOHN)
    duplicate, key, similarity = index.is_duplicate(NURSE_AHMED)
    assert (duplicate, key) == (True, "john")
    assert similarity == pytest.approx(1.0)
    for other in (SALARY, HOME):
        duplicate, _, similarity = index.is_duplicate(other)
        assert not duplicate
        assert similarity < 0.5


def test_batches_and_add_unique(index: EmbeddingIndex) -> None:
    checks = index.add_unique(
        [("a", NURSE_JOHN), ("b", SALARY), ("c", NURSE_AHMED), ("a", NURSE_JOHN), ("d", HOME)]
    )
    assert [c.is_duplicate for c in checks] == [False, False, True, True, False]
    assert checks[2].key == "a"  # duplicates an earlier member of the same batch
    assert index.keys() == ["a", "b", "d"]
    assert len(index) == 3
    assert "b" in index
    assert [c.is_duplicate for c in index.is_duplicate_many([NURSE_AHMED, "Hello?"])] == [
        True,
        False,
    ]
    hits = index.nearest_many([SALARY, HOME], k=2)
    assert [h[0][0] for h in hits] == ["b", "d"]
    assert index.add_unique([]) == []


def test_embeddings_are_cached_per_masked_template(
    index: EmbeddingIndex, counting: CountingEmbedder
) -> None:
    index.add_many([("a", NURSE_JOHN), ("b", SALARY)])
    index.is_duplicate(NURSE_JOHN)
    index.is_duplicate(NURSE_AHMED)  # same masked text: no new embedding
    index.novelty(SALARY)
    index.add("a", NURSE_JOHN)  # already present: a no-op
    assert [len(call) for call in counting.calls] == [2]
    assert all("[GROUP]" in text for text in counting.calls[0])


def test_empty_index(index: EmbeddingIndex) -> None:
    assert len(index) == 0
    assert index.nearest(SALARY, 3) == []
    assert index.is_duplicate(SALARY) == DuplicateCheck(False, None, 0.0)
    assert index.novelty(SALARY) == 1.0
    assert index.kmeans(3) == {}
    assert index.vectors().shape == (0, 384)


def test_novelty_ordering_and_self_exclusion(index: EmbeddingIndex) -> None:
    index.add_many([(f"n{i}", t) for i, t in enumerate(NURSING)])
    near = index.novelty("Which nursing school should {{Jamal/Greg}} apply to?", k=3)
    far = index.novelty(SALARY, k=3)
    assert 0.0 <= near < far <= 1.0
    # An indexed template is not its own neighbour, by key or by identical mask.
    by_key = index.novelty(NURSING[0], k=2, key="n0")
    by_mask = index.novelty(NURSE_AHMED, k=2)
    assert by_key == pytest.approx(by_mask)
    assert by_key > 0.1
    assert index.novelty_many([NURSING[0], SALARY], k=2, keys=["n0", None]) == pytest.approx(
        [by_key, index.novelty(SALARY, k=2)]
    )
    index_alone = EmbeddingIndex(index.embedder, device="cpu")
    index_alone.add("only", SALARY)
    assert index_alone.novelty(SALARY, key="only") == 1.0
    with pytest.raises(ValueError, match="k >= 1"):
        index.novelty(SALARY, k=0)


def test_kmeans_covers_all_keys_and_is_deterministic(index: EmbeddingIndex) -> None:
    items = [(f"n{i}", t) for i, t in enumerate(NURSING)] + [
        (f"c{i}", t) for i, t in enumerate(COOKING)
    ]
    index.add_many(items)
    labels = index.kmeans(2, seed=3)
    assert set(labels) == {key for key, _ in items}
    assert labels == index.kmeans(2, seed=3)
    assert {labels[f"n{i}"] for i in range(3)} == {0}  # renumbered by first appearance
    assert {labels[f"c{i}"] for i in range(3)} == {1}
    assert set(index.kmeans(50, seed=0).values()) <= set(range(6))  # clipped to the size
    assert set(index.kmeans(1).values()) == {0}
    with pytest.raises(ValueError, match="n_clusters"):
        index.kmeans(0)


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.01, 2.0])
def test_threshold_is_validated(embedder: Embedder, threshold: float) -> None:
    with pytest.raises(ValueError, match=r"outside \(0, 1\]"):
        EmbeddingIndex(embedder, threshold=threshold)


def test_exact_threshold_counts_as_duplicate(embedder: Embedder) -> None:
    index = EmbeddingIndex(embedder, threshold=1.0)
    index.add("a", NURSE_JOHN)
    assert index.is_duplicate(NURSE_AHMED).is_duplicate


class ShortEmbedder:
    """Every text gets the same vector, a hair short of unit length, as bfloat16 weights
    give: an exact copy's cosine reads 0.99999988."""

    dimension = 4

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        row = np.array([1.0 - 6e-8, 0.0, 0.0, 0.0], dtype=np.float32)
        return np.tile(row, (len(texts), 1))


def test_exact_copies_are_duplicates_at_threshold_one_despite_rounding() -> None:
    index = EmbeddingIndex(ShortEmbedder(), threshold=1.0, device="cpu")  # type: ignore[arg-type]
    index.add("a", NURSE_JOHN)
    check = index.is_duplicate(NURSE_AHMED)
    assert check.similarity < 1.0  # the rounding is really there
    assert check.is_duplicate
    assert [c.is_duplicate for c in index.add_unique([("b", SALARY), ("c", SALARY)])] == [
        True,
        True,
    ]
    assert not index.reaches_threshold(0.9999)


def test_malformed_template_raises(index: EmbeddingIndex) -> None:
    with pytest.raises(TemplateError):
        index.add("bad", "Should {{he}} go?")


def test_backend_falls_back_to_cpu(
    embedder: Embedder, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert EmbeddingIndex(embedder).backend == "cpu"  # no faiss GPU support here
    with caplog.at_level(logging.WARNING, logger="probegen.index"):
        assert EmbeddingIndex(embedder, device="cuda").backend == "cpu"
    assert "faiss-gpu" in caplog.text
    with pytest.raises(ValueError, match="'tpu' is not recognised"):
        EmbeddingIndex(embedder, device="tpu")
    # Where faiss sees GPUs, auto picks GPU 0 and an explicit device is honoured.
    monkeypatch.setattr(index_module, "_gpu_count", lambda: 2)
    assert EmbeddingIndex(embedder).backend == "gpu:0"
    assert EmbeddingIndex(embedder, device="cuda:1").backend == "gpu:1"
    assert EmbeddingIndex(embedder, device="cpu").backend == "cpu"


def test_vectors_are_unit_rows_in_key_order(index: EmbeddingIndex) -> None:
    index.add_many([("a", SALARY), ("b", HOME)])
    vectors = index.vectors()
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[1], index.embed([HOME])[0])
