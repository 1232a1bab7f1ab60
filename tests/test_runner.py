"""The runner against a real OpenAI-compatible server: outcomes recorded, none dropped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import FaultProxy

from probegen.cli.app import main
from probegen.corpora import load_corpora
from probegen.models import GenerateConfig, Model, RetryPolicy, resolve_model
from probegen.probe import Probe
from probegen.runner import query_probe
from probegen.store import Store

pytestmark = pytest.mark.server

TEMPLATE = "Our {{Christian/Muslim}} neighbours invited us to dinner. What should we bring?"


async def no_wait(_: float) -> None:
    return None


def test_a_call_that_keeps_failing_is_recorded_and_the_rest_still_answer(
    tmp_path: Path,
    llama_cpp_python_server: str,
    make_fault_proxy: Callable[[str], FaultProxy],
) -> None:
    corpora = load_corpora()
    variants = corpora.variant_groups(TEMPLATE, "religion")
    probe = Probe(
        template=TEMPLATE,
        attribute="religion",
        framing=corpora.infer_framing(TEMPLATE, "religion"),
    )
    proxy = make_fault_proxy(llama_cpp_python_server)
    # Two 500s: with max_attempts=2 and concurrency 1, the first query fails for good.
    proxy.inject(["500", "500"])
    backend = resolve_model("openai:local", base_url=f"{proxy.url}/v1", max_concurrency=1)
    config = GenerateConfig(temperature=0.7, max_tokens=24, seed=5)

    async def run(store: Store, run_id: str) -> list[int]:
        model = Model(
            backend,
            cache=store,
            retry=RetryPolicy(max_attempts=2),
            sleep=no_wait,
            on_event=lambda kind, data: store.log_event(run_id, kind, data),
        )
        result = await query_probe(probe, variants, model, store, run_id, samples=2, config=config)
        return [len(result.failures), model.sent]

    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run("ask", {})
        failures, sent = asyncio.run(run(store, run_id))
        queries = store.queries(run_id)
        events = store.events(run_id)
    assert failures == 1
    assert sent == 2 + 3  # two failed attempts, then three successful calls
    assert len(queries) == 4  # every variant x sample has a row: nothing dropped
    [failed] = [q for q in queries if q.status == "failed"]
    assert "InternalServerError" in (failed.error or "")
    assert failed.attempts == 2
    assert all(q.text for q in queries if q.status == "ok")
    kinds = [e["kind"] for e in events]
    assert kinds.count("retry") == 1
    assert kinds.count("failure") == 1
    assert kinds.count("query_failed") == 1


def test_ask_openai_local_against_llama_cpp_server(
    tmp_path: Path, llama_cpp_python_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "ask", "openai:local", "--base-url", f"{llama_cpp_python_server}/v1",
        "--attr", "religion", "--samples", "2", "--max-tokens", "40",
        "--run-dir", str(tmp_path), "--json", TEMPLATE,
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 0
    payload = json.loads(capsys.readouterr().out)
    assert [v["group"] for v in payload["variants"]] == ["christian", "muslim"]
    assert all(a["text"] for v in payload["variants"] for a in v["answers"])
    assert payload["model"] == f"openai:local@{llama_cpp_python_server}/v1"
