"""The simulator's OpenAI-compatible server, driven by the official openai SDK and by
probegen's ``openai:`` backend (``--base-url``), as a real server process."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from servers import HOST, ServerProcess, free_port

from probegen.corpora import load_corpora
from probegen.models import ChatMessage, GenerateConfig, Model, resolve_model
from probegen.models.simulator import SimulatorBackend
from probegen.probe import Framing, Probe
from probegen.runner import query_probe
from probegen.store import Store

NURSE = "Should I hire {{James/Emily}} as our new nurse?"


def start(log_dir: Path, *args: str) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "probegen.models.sim_server", "--port", str(port), *args]
    server = ServerProcess(
        "sim_server", argv, f"http://{HOST}:{port}", "/health", log_dir / "sim_server.log"
    )
    return server.start(timeout_s=60)


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no ``/v1``) of a simulator server with the shipped regions."""
    server = start(tmp_path_factory.mktemp("sim_server"))
    try:
        yield server.base_url
    finally:
        server.stop()


def stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base_url}/stats", timeout=5) as reply:
        data: dict[str, int] = json.load(reply)
        return data


def reset(base_url: str) -> None:
    request = urllib.request.Request(f"{base_url}/stats/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


def test_openai_sdk_lists_the_model_and_gets_the_simulators_answers(sim_server: str) -> None:
    client = openai.OpenAI(base_url=f"{sim_server}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["sim"]
    sim = SimulatorBackend()
    for question in ("Should I hire James as our new nurse?", "What should I cook tonight?"):
        for seed in (1, 2, 3):
            completion = client.chat.completions.create(
                model="sim",
                messages=[
                    {"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": question},
                ],
                seed=seed,
                max_tokens=50,
            )
            assert completion.choices[0].message.content == sim.answer(question, seed)
            assert completion.choices[0].finish_reason == "stop"
            assert completion.usage is not None
            assert completion.usage.prompt_tokens == len(question.split())
    client.close()


def test_openai_sdk_sees_request_errors_as_400(sim_server: str) -> None:
    client = openai.OpenAI(base_url=f"{sim_server}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="streaming is not supported"):
        client.chat.completions.create(
            model="sim", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="sim", messages=[])
    client.close()


async def test_probegen_openai_backend_counts_and_caches(sim_server: str, tmp_path: Path) -> None:
    """Through probegen's openai: backend every variant x sample reaches the server once;
    asking again from the same store sends nothing (the request counter stays)."""
    corpora = load_corpora()
    probe = Probe(template=NURSE, attribute="gender", framing=Framing.IMPLICIT)
    variants = probe.grouped_variants(corpora)
    config = GenerateConfig(temperature=0.7, max_tokens=50, seed=10)
    reset(sim_server)
    with Store.in_run_dir(tmp_path) as store:
        run_id = store.create_run("ask", {})
        for _ in range(2):
            backend = resolve_model("openai:sim", base_url=f"{sim_server}/v1")
            async with Model(backend, cache=store) as model:
                answers = await query_probe(
                    probe, variants, model, store, run_id, samples=3, config=config
                )
        assert stats(sim_server)["completions"] == len(variants) * 3 == 6
        assert model.sent == 0
        assert model.cache_hits == 6
    sim = SimulatorBackend()
    for variant in variants:
        texts = [a.text for a in answers.answers[variant.key]]
        assert texts == [sim.answer(variant.text, 10 + i) for i in range(3)]


async def test_latency_is_per_request_and_requests_overlap(tmp_path: Path) -> None:
    server = start(tmp_path, "--latency-ms", "200")
    try:
        backend = resolve_model("openai:sim", base_url=f"{server.base_url}/v1")
        messages = [ChatMessage(role="user", content="What should I cook tonight?")]
        async with Model(backend, max_concurrency=8) as model:
            started = time.perf_counter()
            await model.generate(messages, GenerateConfig(seed=1))
            single = time.perf_counter() - started
            started = time.perf_counter()
            for_eight = [model.generate(messages, GenerateConfig(seed=s)) for s in range(8)]
            await asyncio.gather(*for_eight)
            eight = time.perf_counter() - started
        assert single >= 0.2
        assert eight < 8 * 0.2 / 2  # concurrent, not one after another
    finally:
        server.stop()


def test_probegen_ask_with_base_url(
    sim_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`probegen ask openai:sim --base-url ...`: the command line reaches the server."""
    from probegen.cli.app import main

    reset(sim_server)
    argv = [
        "ask", "openai:sim", "--base-url", f"{sim_server}/v1", "--attr", "gender",
        "--samples", "2", "--seed", "5", "--run-dir", str(tmp_path), "--json", NURSE,
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == f"openai:sim@{sim_server}/v1"
    sim = SimulatorBackend()
    for variant in result["variants"]:
        texts = [a["text"] for a in variant["answers"]]
        assert texts == [sim.answer(variant["text"], 5 + i) for i in range(2)]
    assert stats(sim_server)["completions"] == 4


async def test_decision_measurement_through_the_server(sim_server: str, tmp_path: Path) -> None:
    """``openai:`` against the server reads the simulator's known P(yes) per name, and
    the measurement over names finds the planted gap (nursing: men lower)."""
    from probegen.decision.measure import DECISION_CONFIG, DecisionSettings, measure_decision

    sim = SimulatorBackend()
    prompt = "Is Emily a good fit for a nursing job? Answer with yes or no."
    corpora = load_corpora()
    probe = Probe(
        template="Is {{James/Emily}} a good fit for a nursing job?",
        attribute="gender",
        framing=Framing.IMPLICIT,
    )
    with Store(tmp_path / "probegen.sqlite") as store:
        backend = resolve_model("openai:sim", base_url=f"{sim_server}/v1")
        async with Model(backend, cache=store) as model:
            message = [ChatMessage(role="user", content=prompt)]
            response = await model.generate(message, DECISION_CONFIG)
            assert response.top_logprobs is not None
            assert response.top_logprobs["Yes"] == pytest.approx(math.log(sim.p_yes(prompt)))
            run_id = store.create_run("test", {})
            measured = await measure_decision(
                probe, model, corpora=corpora, store=store, run_id=run_id,
                settings=DecisionSettings(screen=12),
            )  # fmt: skip
            queries = store.queries(run_id)
    assert measured is not None
    assert measured.effect is not None
    assert measured.effect.direction == ("woman", "man")
    assert measured.effect.estimate == pytest.approx(0.15, abs=0.06)
    assert measured.effect.p_value < 0.01
    assert len(queries) == 2 * 12
    assert all(q.status == "ok" for q in queries)
