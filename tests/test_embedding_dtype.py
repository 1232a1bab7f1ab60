"""``Embedder(dtype="bfloat16")``: unit float32 vectors close to float32's, the same
duplicate decisions on near-copies, cached apart from float32's, refused otherwise;
``dtype="auto"`` picks it only where the hardware computes bfloat16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_embedding_cache import TEMPLATES

from probegen.embedding_cache import CACHE_FILE, EmbeddingCache
from probegen.embeddings import Embedder, native_bfloat16
from probegen.index import EmbeddingIndex


def test_bfloat16_vectors_are_unit_and_close_to_float32s() -> None:
    exact = Embedder().encode(TEMPLATES)
    fast = Embedder(dtype="bfloat16").encode(TEMPLATES)
    assert fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert float((exact * fast).sum(axis=1).min()) > 0.999
    assert not np.array_equal(exact, fast)  # really another computation


def test_bfloat16_dedups_the_near_copies_alike() -> None:
    def decisions(embedder: Embedder) -> list[tuple[bool, str | None]]:
        index = EmbeddingIndex(embedder, threshold=0.95)
        return [
            (c.is_duplicate, c.key)
            for c in index.add_unique([(f"p{i}", t) for i, t in enumerate(TEMPLATES)])
        ]

    plain = decisions(Embedder())
    assert any(duplicate for duplicate, _ in plain)
    assert decisions(Embedder(dtype="bfloat16")) == plain


def test_bfloat16_vectors_are_cached_apart(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / CACHE_FILE)
    exact = Embedder(cache=cache)
    fast = Embedder(cache=cache, dtype="bfloat16")
    assert exact.cache_key != fast.cache_key
    assert fast.cache_key.endswith("#bfloat16")
    exact.encode(TEMPLATES[:2])
    assert cache.get_many(fast.cache_key, TEMPLATES[:2]) == [None, None]


def test_another_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="float32, bfloat16 or auto"):
        Embedder(dtype="float16")  # type: ignore[arg-type]


@pytest.mark.parametrize(("native", "chosen"), [(True, "bfloat16"), (False, "float32")])
def test_auto_picks_bfloat16_only_where_the_hardware_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, chosen: str
) -> None:
    monkeypatch.setattr("probegen.embeddings.native_bfloat16", lambda device=None: native)
    embedder = Embedder(dtype="auto")
    assert embedder.dtype == chosen
    assert embedder.cache_key.endswith("#bfloat16") == native


def test_native_bfloat16_reads_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for avx512_bf16, amx, expected in [
        (False, False, False),
        (True, False, True),
        (False, True, True),
    ]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert native_bfloat16("cpu") is expected
    assert native_bfloat16("mps") is False
