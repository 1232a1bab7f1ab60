"""The ``local`` backend: SmolLM2-135M-Instruct in-process via llama-cpp-python."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from probegen.models import ChatMessage, ChatModel, GenerateConfig, Model, resolve_model

MESSAGES = [
    ChatMessage(role="system", content="You are a hiring assistant. Answer briefly."),
    ChatMessage(role="user", content="Should we hire Aisha as a nurse? Answer yes or no."),
]


@pytest.fixture(scope="module")
def local_model() -> Iterator[ChatModel]:
    """One loaded SmolLM2 for the module (loading takes about 0.3 s, but memory adds up)."""
    backend = resolve_model("local")
    yield backend
    asyncio.run(backend.aclose())


async def test_local_generates_real_text(local_model: ChatModel) -> None:
    model = Model(local_model)
    response = await model.generate(MESSAGES, GenerateConfig(temperature=0.0, max_tokens=24))
    assert response.text.strip()
    assert response.finish_reason in {"stop", "length"}
    assert response.usage.input_tokens
    assert response.usage.input_tokens > 10
    assert response.usage.output_tokens
    assert 0 < response.usage.output_tokens <= 24
    assert response.usage.cost_usd is None
    assert response.latency_s > 0
    assert model.identity == "local:SmolLM2-135M-Instruct.Q4_1.gguf"


async def test_same_seed_same_text(local_model: ChatModel) -> None:
    config = GenerateConfig(temperature=1.0, max_tokens=32, seed=1234)
    first = await local_model.generate(MESSAGES, config)
    second = await local_model.generate(MESSAGES, config)
    assert first.text == second.text
    others = {
        (await local_model.generate(MESSAGES, config.for_sample(i))).text for i in range(1, 4)
    }
    assert len(others | {first.text}) > 1, "different seeds should sample different text"


async def test_concurrent_calls_are_serialised_safely(local_model: ChatModel) -> None:
    model = Model(local_model, max_concurrency=4)  # the backend's lock still serialises
    config = GenerateConfig(temperature=0.7, max_tokens=12, seed=5)
    responses = await asyncio.gather(
        *(model.generate(MESSAGES, config, sample_index=i) for i in range(4))
    )
    assert all(r.text.strip() for r in responses)
    assert model.sent == 4


async def test_local_path_spec(smollm2_gguf: Path) -> None:
    backend = resolve_model(f"local:{smollm2_gguf}")
    try:
        assert backend.spec == f"local:{smollm2_gguf}"
        response = await backend.generate(MESSAGES, GenerateConfig(temperature=0, max_tokens=8))
        assert response.text.strip()
    finally:
        await backend.aclose()


DECISION = [ChatMessage(role="user", content="Is Emily a good fit for a nursing job? "
                        "Answer with yes or no.")]  # fmt: skip


async def test_local_reads_the_first_token_distribution(local_model: ChatModel) -> None:
    from doubles import DictCache

    from probegen.corpora import load_corpora
    from probegen.decision.measure import DECISION_CONFIG, yes_probability
    from probegen.decision.units import load_decision_corpus

    cache = DictCache()
    model = Model(local_model, cache=cache)
    response = await model.generate(DECISION, DECISION_CONFIG)
    assert response.top_logprobs
    assert len(response.top_logprobs) >= 10
    assert all(value <= 0 for value in response.top_logprobs.values())
    p_yes, mass = yes_probability(response.top_logprobs, load_decision_corpus(load_corpora()))
    assert p_yes is not None
    assert 0 < p_yes < 1
    assert mass > 0.2
    # Cached with its distribution; plain generation is untouched by the second context.
    again = await model.generate(DECISION, DECISION_CONFIG)
    assert again.cached
    assert again.top_logprobs == response.top_logprobs
    text = await model.generate(DECISION, GenerateConfig(temperature=0.0, max_tokens=12))
    assert text.top_logprobs is None
    assert len(text.text.split()) > 1
