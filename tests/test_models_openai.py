"""The ``openai:`` backend and the Model wrapper against a real ``llama_cpp.server``.

Faults come from :class:`servers.FaultProxy` in front of the server, so the official
SDK parses real HTTP 429/500 answers and hits a real client timeout.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from doubles import DictCache, Sleeps
from servers import FaultProxy

from probegen.cli.app import main
from probegen.errors import ModelCallError
from probegen.models import (
    ChatMessage,
    GenerateConfig,
    Model,
    RetryPolicy,
    resolve_model,
)

pytestmark = pytest.mark.server

MESSAGES = [
    ChatMessage(role="system", content="You are a helpful assistant. Answer in one sentence."),
    ChatMessage(role="user", content="Name one colour of the rainbow."),
]
CONFIG = GenerateConfig(temperature=0.0, max_tokens=16, seed=1)
ProxyFactory = Callable[[str], FaultProxy]


async def test_plain_call_with_usage(llama_cpp_python_server: str) -> None:
    base_url = f"{llama_cpp_python_server}/v1"
    async with Model(resolve_model("openai:local", base_url=base_url)) as model:
        response = await model.generate(MESSAGES, CONFIG)
    assert response.text.strip()
    assert response.finish_reason in {"stop", "length"}
    assert response.usage.input_tokens
    assert response.usage.input_tokens > 10
    assert response.usage.output_tokens
    assert response.usage.output_tokens > 0
    assert response.usage.cost_usd is None  # a local model is not priced
    assert model.identity == f"openai:local@{base_url}"
    assert model.sent == 1


async def test_same_seed_same_text(llama_cpp_python_server: str) -> None:
    backend = resolve_model("openai:local", base_url=f"{llama_cpp_python_server}/v1")
    config = GenerateConfig(temperature=1.0, max_tokens=24, seed=77)
    try:
        first = await backend.generate(MESSAGES, config)
        second = await backend.generate(MESSAGES, config)
    finally:
        await backend.aclose()
    assert first.text == second.text


async def test_recovers_from_429_500_and_timeout(
    llama_cpp_python_server: str, make_fault_proxy: ProxyFactory
) -> None:
    proxy = make_fault_proxy(llama_cpp_python_server)
    proxy.inject(["429:1", "500", "timeout:30"])
    sleeps = Sleeps()
    events: list[tuple[str, dict[str, object]]] = []
    # 20 s: room for a real answer on a heavily loaded two-core machine (as in the
    # Anthropic test beside this one); the injected stall lasts 30 s, always a timeout.
    backend = resolve_model("openai:local", base_url=f"{proxy.url}/v1", timeout_s=20.0)
    async with Model(
        backend, sleep=sleeps, on_event=lambda kind, data: events.append((kind, data))
    ) as model:
        response = await model.generate(MESSAGES, CONFIG)
    assert response.text.strip()
    assert [data["reason"] for _, data in events] == ["429", "500", "timeout"]
    assert events[0][1]["retry_after"] == 1.0
    assert sleeps.waits[0] >= 1.0  # Retry-After: 1 honoured
    assert (model.sent, model.retries, model.failures) == (4, 3, 0)
    assert (proxy.received, proxy.forwarded) == (4, 1)


async def test_exhausted_retries_raise(
    llama_cpp_python_server: str, make_fault_proxy: ProxyFactory
) -> None:
    proxy = make_fault_proxy(llama_cpp_python_server)
    proxy.inject(["503", "500", "502"])
    backend = resolve_model("openai:local", base_url=f"{proxy.url}/v1")
    async with Model(backend, retry=RetryPolicy(max_attempts=3), sleep=Sleeps()) as model:
        with pytest.raises(ModelCallError) as caught:
            await model.generate(MESSAGES, CONFIG)
    assert caught.value.attempts == 3
    assert caught.value.spec == "openai:local"
    assert "InternalServerError" in caught.value.cause
    assert (model.failures, proxy.forwarded) == (1, 0)


async def test_client_error_is_not_retried(
    llama_cpp_python_server: str, make_fault_proxy: ProxyFactory
) -> None:
    proxy = make_fault_proxy(llama_cpp_python_server)
    proxy.inject(["400"])
    sleeps = Sleeps()
    backend = resolve_model("openai:local", base_url=f"{proxy.url}/v1")
    async with Model(backend, sleep=sleeps) as model:
        with pytest.raises(ModelCallError) as caught:
            await model.generate(MESSAGES, CONFIG)
    assert caught.value.attempts == 1
    assert "BadRequestError" in caught.value.cause
    assert sleeps.waits == []


async def test_cache_hit_sends_nothing(
    llama_cpp_python_server: str, make_fault_proxy: ProxyFactory
) -> None:
    proxy = make_fault_proxy(llama_cpp_python_server)
    cache = DictCache()
    backend = resolve_model("openai:local", base_url=f"{proxy.url}/v1")
    async with Model(backend, cache=cache) as model:
        first = await model.generate(MESSAGES, CONFIG)
        assert proxy.forwarded == 1
        second = await model.generate(MESSAGES, CONFIG)
        assert proxy.forwarded == 1  # nothing sent
        assert second.cached
        assert second.text == first.text
        assert (model.sent, model.cache_hits) == (1, 1)
        await model.generate(MESSAGES, CONFIG, sample_index=1)
        assert proxy.forwarded == 2


def test_cli_ping(llama_cpp_python_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["models", "ping", "openai:local", "--base-url", f"{llama_cpp_python_server}/v1"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "latency" in out
    assert "answer" in out
    assert "input +" in out


async def test_first_token_logprobs_match_the_in_process_model(
    llama_cpp_python_server: str,
) -> None:
    """llama_cpp.server (--logits_all) and the in-process ``local`` model run the same
    weights: the decision measurement reads the same P(yes) through either."""
    from probegen.corpora import load_corpora
    from probegen.decision.measure import DECISION_CONFIG, yes_probability
    from probegen.decision.units import load_decision_corpus

    corpus = load_decision_corpus(load_corpora())
    prompt = [ChatMessage(role="user", content="Is James a safe driver? Answer with yes or no.")]
    async with (
        Model(resolve_model("openai:local", base_url=f"{llama_cpp_python_server}/v1")) as served,
        Model(resolve_model("local")) as local,
    ):
        remote = await served.generate(prompt, DECISION_CONFIG)
        here = await local.generate(prompt, DECISION_CONFIG)
    assert remote.top_logprobs
    assert here.top_logprobs
    p_remote, _ = yes_probability(remote.top_logprobs, corpus)
    p_here, _ = yes_probability(here.top_logprobs, corpus)
    assert p_remote is not None
    assert p_here is not None
    assert p_remote == pytest.approx(p_here, abs=0.02)
