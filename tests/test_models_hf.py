"""The ``hf:`` backend: SmolLM2's GGUF through transformers (dequantised, CPU or CUDA)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from probegen.models import ChatMessage, ChatModel, GenerateConfig, Model, resolve_model

pytestmark = pytest.mark.slow

MESSAGES = [
    ChatMessage(role="system", content="You are a hiring assistant. Answer briefly."),
    ChatMessage(role="user", content="Should we hire Peter as a nurse? Answer yes or no."),
]


@pytest.fixture(scope="module")
def hf_model(smollm2_gguf: Path) -> Iterator[ChatModel]:
    """SmolLM2 through transformers; the first call loads it (about 20 s on CPU)."""
    backend = resolve_model(f"hf:{smollm2_gguf}")
    yield backend
    asyncio.run(backend.aclose())


async def test_hf_generates_real_text(hf_model: ChatModel, smollm2_gguf: Path) -> None:
    assert hf_model.identity == f"hf:{smollm2_gguf.resolve()}"
    model = Model(hf_model)
    response = await model.generate(MESSAGES, GenerateConfig(temperature=0.0, max_tokens=16))
    assert response.text.strip()
    assert response.finish_reason in {"stop", "length"}
    assert response.usage.input_tokens
    assert response.usage.input_tokens > 10
    assert response.usage.output_tokens
    assert 0 < response.usage.output_tokens <= 16


async def test_hf_same_seed_same_text(hf_model: ChatModel) -> None:
    config = GenerateConfig(temperature=1.0, max_tokens=16, seed=99)
    first = await hf_model.generate(MESSAGES, config)
    second = await hf_model.generate(MESSAGES, config)
    assert first.text.strip()
    assert first.text == second.text


async def test_hf_reads_the_first_token_distribution(hf_model: ChatModel) -> None:
    from probegen.decision.measure import DECISION_CONFIG

    response = await Model(hf_model).generate(MESSAGES, DECISION_CONFIG)
    assert response.top_logprobs
    assert len(response.top_logprobs) <= 20
    assert all(value <= 0 for value in response.top_logprobs.values())
    assert response.usage.output_tokens == 1
    best = max(response.top_logprobs, key=lambda token: response.top_logprobs[token])
    assert response.text.strip() == best.strip()
