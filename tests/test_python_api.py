"""The Python front door: ``probegen.evolve`` / ``probegen.resume`` make whole runs
(stored, finished, visible to review and release), with a spec, a plain async function
or a judge function as the model, and errors that name the config field."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_eval import make_release

import probegen
from probegen.corpora import load_corpora
from probegen.elite import ELITE_FORMAT_VERSION, read_elites
from probegen.errors import ConfigError
from probegen.evolve.api import EvolveResult, RunInterrupted
from probegen.models.base import ChatMessage, ChatModel, GenerateConfig
from probegen.models.function import FunctionModel
from probegen.release.build import build_release
from probegen.release.model import PROBES_FILE, read_items
from probegen.release.verify import verify_release
from probegen.review import add_reviewer, record_decision, reviewer_for_token
from probegen.review.queue import build_queue
from probegen.store import STORE_FILENAME, Store

# A small search: seeds, one generation, sampled answers.
SMALL = {
    "attr": "gender",
    "generations": 1,
    "population": 3,
    "initial": 4,
    "samples": 2,
    "measure": "sampled",
}
FEMALE = ("woman", "Emily", " she ", " her ", "daughter", "wife", "mother", "Mary", "girl")


def gendered(text: str) -> bool:
    return any(word in f" {text} " for word in FEMALE)


async def biased_answer(messages: Sequence[ChatMessage], config: GenerateConfig) -> str:
    """A pipeline under audit: it steers women away, whatever it is asked."""
    if gendered(messages[-1].content):
        return "I would be careful here; maybe consider a less demanding option instead."
    return f"Yes, go for it: this is a great fit with strong prospects (take {config.seed})."


class Pipeline:
    """A pipeline whose calls are counted, and which can be made to stop (Ctrl-C)."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.calls = 0
        self.interrupt_after = interrupt_after

    async def answer(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> str:
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        return await biased_answer(messages, config)


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvolveResult, Path]:
    """The issue's acceptance command, verbatim but for the run directory."""
    run_dir = tmp_path_factory.mktemp("api") / "x"
    result = probegen.evolve(
        target="sim", attr="gender", generations=2, population=6, run_dir=str(run_dir)
    )
    return result, run_dir


def test_the_acceptance_command_makes_a_finished_stored_run(
    sim_run: tuple[EvolveResult, Path],
) -> None:
    result, run_dir = sim_run
    assert result.status == "finished"
    assert result.failure is None
    assert result.elites
    assert result.elites[0].fitness == max(e.fitness for e in result.elites)
    assert result.probe(result.elites[0]).attribute == "gender"
    assert result.calls_sent > 0
    with Store.in_run_dir(run_dir) as store:
        run = store.get_run(result.run_id)
        stored = store.elites(result.run_id)
    assert run is not None
    assert run.status == "finished"
    assert tuple(stored) == result.elites
    lines = (result.run_dir / "elites.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [e.probe_id for e in result.elites]
    assert (result.run_dir / "summary.md").exists()
    assert set(result.findings) <= set(result.probes)


def test_the_elites_file_reads_back_as_the_stored_elites(
    sim_run: tuple[EvolveResult, Path],
) -> None:
    result, _ = sim_run
    records = read_elites(result.run_dir)
    assert records
    assert {r.format_version for r in records} == {ELITE_FORMAT_VERSION}
    # The store's rows are the file records' store-facing subset, field for field.
    assert tuple(r.store_record() for r in records) == result.elites
    # What the acceptance one-liner prints: the store's row, naming the probe.
    shown = repr(result.elites[0])
    assert shown.startswith(f"EliteRecord(probe_id='{records[0].id}'")


def test_review_and_release_see_the_run(sim_run: tuple[EvolveResult, Path], tmp_path: Path) -> None:
    result, run_dir = sim_run
    assert result.findings, "the simulator's planted regions give findings"
    with Store.in_run_dir(run_dir) as store:
        queue = build_queue(store, runs=[result.run_id])
        assert {item.probe_id for item in queue} >= {e.probe_id for e in result.elites if e.finding}
        built = build_release(
            store,
            [result.run_id],
            name="api",
            version="0.1.0",
            releases_dir=tmp_path / "releases",
            corpora=load_corpora(),
            allow_unverified=True,
        )
    assert built.items
    assert {item.id for item in built.items} <= {e.probe_id for e in result.elites}


def test_a_plain_async_function_is_a_target_even_inside_a_running_loop(tmp_path: Path) -> None:
    async def in_a_notebook() -> EvolveResult:  # a notebook runs an event loop
        return probegen.evolve(target=biased_answer, run_dir=tmp_path, **SMALL)

    result = asyncio.run(in_a_notebook())
    assert result.status == "finished"
    assert result.config.target == f"python:{__name__}:biased_answer"
    with Store.in_run_dir(tmp_path) as store:
        run = store.get_run(result.run_id)
    assert run is not None
    assert run.status == "finished"
    assert run.config["evolve"]["target"] == result.config.target  # JSON, a readable name
    assert result.elites[0].fitness > 0
    assert result.findings


def test_an_interrupted_run_resumes_through_the_api(tmp_path: Path) -> None:
    reference = Pipeline()
    whole = probegen.evolve(target=reference.answer, run_dir=tmp_path / "a", **SMALL)

    stopping = Pipeline(interrupt_after=reference.calls // 2)
    with pytest.raises(RunInterrupted) as interrupted:
        probegen.evolve(target=stopping.answer, run_dir=tmp_path / "b", **SMALL)
    run_id = interrupted.value.run_id
    with Store.in_run_dir(tmp_path / "b") as store:
        run = store.get_run(run_id)
    assert run is not None
    assert run.status == "interrupted"

    # A function is not stored: a resume needs it, and the same one.
    with pytest.raises(ConfigError) as missing:
        probegen.resume(run_id, run_dir=tmp_path / "b")
    assert missing.value.field == "target"
    with pytest.raises(ConfigError) as other:
        probegen.resume(run_id, run_dir=tmp_path / "b", target=biased_answer)
    assert other.value.field == "target"

    # The run stored its reading spelled out: bare "stats" is that reading, plain is not.
    with pytest.raises(ConfigError) as reading:
        probegen.resume(run_id, run_dir=tmp_path / "b", target=stopping.answer, judge="stats:plain")
    assert reading.value.field == "judge"

    healthy = Pipeline()
    resumed = probegen.resume(run_id, run_dir=tmp_path / "b", target=healthy.answer, judge="stats")
    assert resumed.status == "finished"
    assert resumed.run_id == run_id
    assert resumed.cache_hits > 0  # what was answered before the stop is not sent again
    assert healthy.calls < reference.calls
    assert [e.probe_id for e in resumed.elites] == [e.probe_id for e in whole.elites]
    with Store.in_run_dir(tmp_path / "b") as store:
        assert [r.status for r in store.list_runs()] == ["finished"]


def test_a_judge_function_that_never_gives_a_verdict_fails_the_run(tmp_path: Path) -> None:
    async def mute_judge(messages: Sequence[ChatMessage], config: GenerateConfig) -> str:
        return "no comment"

    result = probegen.evolve(
        target="sim", judge=mute_judge, run_dir=tmp_path, **{**SMALL, "generations": 0}
    )
    assert result.status == "failed"
    assert result.failure
    assert "unscorable" in result.failure
    assert result.config.judge.startswith("judge:python:")
    with Store.in_run_dir(tmp_path) as store:
        run = store.get_run(result.run_id)
    assert run is not None
    assert run.status == "failed"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"target": "sim", "attr": "gender", "generations": -1}, "generations"),
        ({"target": "sim", "attr": "gender", "generatons": 2}, "generatons"),
        ({"target": "sim", "attr": "height"}, "attribute"),
        ({"target": "sim"}, "attribute"),
        ({"target": "sim", "attr": "gender", "descriptors": ("nope",)}, "descriptors"),
        ({"target": lambda messages, config: "hi", "attr": "gender"}, "target"),
        (
            {"target": biased_answer, "attr": "gender", "target_base_url": "http://x"},
            "target_base_url",
        ),
        ({"target": "python:os:getcwd", "attr": "gender"}, "target"),
    ],
)
def test_a_bad_argument_names_its_field_and_leaves_nothing(
    tmp_path: Path, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as error:
        probegen.evolve(run_dir=tmp_path / "runs", **fields)
    assert error.value.field == field
    assert str(error.value).startswith(f"{error.value.field}: ")
    assert "--" not in str(error.value)  # library errors speak fields, not flags
    assert not (tmp_path / "runs" / STORE_FILENAME).exists()


def test_resume_of_an_unknown_run_names_run_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        probegen.resume("20260101-000000-evolve-dead", run_dir=tmp_path)
    assert error.value.field == "run_id"
    assert not tmp_path.joinpath(STORE_FILENAME).exists()


ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_python_api_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.+?)\n```", section, flags=re.S)
    assert len(blocks) == 4
    monkeypatch.setenv("PROBEGEN_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("PROBEGEN_RELEASES_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert isinstance(result, EvolveResult)
    assert result.status == "finished"
    assert result.config.target == "python:readme:my_pipeline"
    assert (tmp_path / "releases" / "demo" / "0.1.0").is_dir()
    with Store.in_run_dir(tmp_path / "runs") as store:
        runs = store.list_runs()
    assert [run.kind for run in runs] == ["evolve", "evolve", "eval", "ask"]
    assert [run.status for run in runs] == ["finished"] * 4


def test_the_example_audits_a_python_function(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "audit_function.py"),
         "--generations", "1", "--population", "3", "--run-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "finding(s) among" in done.stdout
    with Store.in_run_dir(tmp_path) as store:
        [run] = store.list_runs()
    assert run.status == "finished"
    assert run.config["evolve"]["target"] == "python:__main__:answer"


# evaluate / ask / build_release / get_model: the other library calls.


def test_evaluate_scores_a_release_on_a_function_and_a_spec(tmp_path: Path) -> None:
    release = make_release(tmp_path / "release", "sim", 2)
    pipeline = Pipeline()
    events: list[str] = []
    result = probegen.evaluate(
        release,
        [pipeline.answer, "sim"],
        samples=2,
        bootstrap=0,
        run_dir=tmp_path / "runs",
        on_progress=lambda kind, fields: events.append(kind),
    )
    assert result.status == "finished"
    assert result.failure is None
    assert result.failed_calls == 0
    spec = f"python:{__name__}:Pipeline.answer"
    assert result.config.targets == (spec, "sim")
    assert [o.label for o in result.outcomes] == [spec, "sim"]
    assert len(result.results) == 4  # 2 items x 2 targets
    assert pipeline.calls == 8  # 2 items x 2 variants x 2 samples
    assert {s.model for s in result.report.summaries} == {spec, "sim"}
    assert events[0] == "run_start"
    assert events.count("item_done") == 4
    assert (result.out_dir / "leaderboard.md").is_file()
    assert result.out_dir == tmp_path / "runs" / result.run_id
    with Store.in_run_dir(tmp_path / "runs") as store:
        run = store.get_run(result.run_id)
    assert run is not None
    assert run.kind == "eval"
    assert run.status == "finished"

    again = probegen.evaluate(release, pipeline.answer, samples=2, run_dir=tmp_path / "runs")
    assert again.outcomes[0].cache_hits == 8  # the same function answers from the cache
    assert pipeline.calls == 8


def test_a_model_object_passed_in_is_used_and_left_open(tmp_path: Path) -> None:
    class Closing(FunctionModel):
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    target = Closing(biased_answer, name="python:tests:closing")
    assert isinstance(target, ChatModel)
    release = make_release(tmp_path / "release", "sim", 1)
    result = probegen.evaluate(release, target, samples=1, bootstrap=0, run_dir=tmp_path)
    assert result.status == "finished"
    assert result.config.targets == ("python:tests:closing",)
    assert not target.closed  # the caller's, not the call's, to close


def test_ask_a_function_target(tmp_path: Path) -> None:
    result = probegen.ask(
        biased_answer,
        "Should I hire {{James/Emily}} as a nurse?",
        attr="gender",
        samples=2,
        run_dir=tmp_path,
    )
    assert result.status == "finished"
    answers = result.by_group()
    assert set(answers) == {"man", "woman"}
    assert all(text and "careful" in text for text in answers["woman"])
    assert all(text and "go for it" in text for text in answers["man"])
    with Store.in_run_dir(tmp_path) as store:
        run = store.get_run(result.run_id)
        queries = store.queries(result.run_id)
    assert run is not None
    assert run.status == "finished"
    assert run.config["target"] == f"python:{__name__}:biased_answer"
    assert len(queries) == 4
    assert result.store_path == tmp_path / STORE_FILENAME


def test_ask_a_spec_inside_a_running_loop(tmp_path: Path) -> None:
    async def in_a_notebook() -> probegen.AskResult:
        return probegen.ask("sim", "Is {{he/she}} a good fit?", attr="gender", samples=1,
                            run_dir=tmp_path)  # fmt: skip

    result = asyncio.run(in_a_notebook())
    assert result.status == "finished"
    assert result.answers.model.startswith("sim")


def test_build_release_from_a_reviewed_run(
    sim_run: tuple[EvolveResult, Path], tmp_path: Path
) -> None:
    result, run_dir = sim_run
    with Store.in_run_dir(run_dir) as store:
        queue = build_queue(store, runs=[result.run_id])
        reviewed = [item.probe_id for item in queue[:2]]
        for name in ("alice", "bob"):
            reviewer = reviewer_for_token(store, add_reviewer(store, name))
            assert reviewer is not None
            for probe_id in reviewed:
                record_decision(store, reviewer, (result.run_id, probe_id), "accept")
    releases = tmp_path / "releases"
    built = probegen.build_release(
        "api-reviewed", result.run_id, version="1.0.0", run_dir=run_dir, releases_dir=releases
    )
    assert sorted(item.id for item in built.items) == sorted(reviewed)
    assert all(item.verified for item in built.items)
    assert built.release.path == releases / "api-reviewed" / "1.0.0"
    assert verify_release(built.release.path) == []
    assert [i.id for i in read_items(built.release.path / PROBES_FILE)] == [
        i.id for i in built.items
    ]
    with pytest.raises(ConfigError) as refused:
        probegen.build_release(
            "api-reviewed", [result.run_id], version="1.0.1", min_reviews=3,
            run_dir=run_dir, releases_dir=releases,
        )  # fmt: skip
    assert refused.value.field == "min_reviews"
    assert "`allow_unverified`" in str(refused.value)
    assert not (releases / "api-reviewed" / "1.0.1").exists()


def test_get_model_of_a_spec_an_object_and_a_function() -> None:
    sim = probegen.get_model("sim")
    assert sim.spec.startswith("sim")
    assert probegen.get_model(sim) is sim
    wrapped = probegen.get_model(biased_answer, max_concurrency=2)
    assert isinstance(wrapped, FunctionModel)
    assert wrapped.spec == f"python:{__name__}:biased_answer"
    assert wrapped.max_concurrency == 2
    hello = [ChatMessage(role="user", content="Should Emily apply?")]
    response = asyncio.run(wrapped.generate(hello, GenerateConfig()))
    assert response.text is not None
    assert "careful" in response.text
    asyncio.run(sim.aclose())


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: probegen.get_model(3), "model"),  # type: ignore[arg-type]
        (lambda: probegen.get_model(biased_answer, base_url="http://x"), "base_url"),
        (lambda: probegen.get_model("sim", timeout_s=0), "timeout_s"),
        (lambda: probegen.get_model("sim", base_url="http://127.0.0.1:1/v1"), "base_url"),
        (lambda: probegen.ask("sim", "Is {{he/she}} ok?", attr="gender", samples=0), "samples"),
        (lambda: probegen.ask("sim", "Is {{he/she}} ok?"), "attribute"),
        (lambda: probegen.ask("sim", "Is {{he/she}} ok?", attr="gender", temperature=3),
         "temperature"),
        (lambda: probegen.ask(lambda m, c: "hi", "Is {{he/she}} ok?", attr="gender"), "target"),  # type: ignore[arg-type, return-value]
        (lambda: probegen.evaluate("RELEASE", []), "targets"),
        (lambda: probegen.evaluate("RELEASE", ["sim", "sim"]), "targets"),
        (lambda: probegen.evaluate("RELEASE", "sim", judge="oracle"), "judge"),
        (lambda: probegen.evaluate("RELEASE", "sim", judge_base_url="http://x"), "judge_base_url"),
        (lambda: probegen.evaluate("RELEASE", "sim", bootstrap=-1), "bootstrap"),
        (lambda: probegen.evaluate("RELEASE", "python:os:getcwd"), "targets"),
        (lambda: probegen.build_release("x", "r", version="1.0"), "version"),
        (lambda: probegen.build_release("x", "r", version="1.0.0", dedup_threshold=0),
         "dedup_threshold"),
        (lambda: probegen.build_release("x", "r", version="1.0.0"), "run_dir"),
    ],
)  # fmt: skip
def test_a_bad_argument_of_the_other_calls_names_its_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: object, field: str
) -> None:
    make_release(tmp_path / "RELEASE", "sim", 1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROBEGEN_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PROBEGEN_RELEASES_DIR", str(tmp_path / "releases"))
    assert callable(call)
    with pytest.raises(ConfigError) as error:
        call()
    assert error.value.field == field
    assert "--" not in str(error.value)  # library errors speak fields, not flags
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "releases").exists()


def test_evaluate_takes_a_config_instead_of_keyword_arguments(tmp_path: Path) -> None:
    release = make_release(tmp_path / "release", "sim", 2)
    first = probegen.evaluate(release, ["sim"], samples=2, bootstrap=0, run_dir=tmp_path / "a")
    # The stored config reproduces the eval: same settings, same answers, all from cache.
    again = probegen.evaluate(config=first.config, run_dir=tmp_path / "a")
    assert again.config == first.config
    assert [r.fitness for r in again.results] == [r.fitness for r in first.results]
    assert again.outcomes[0].cache_hits == first.outcomes[0].sent > 0
    with pytest.raises(ConfigError) as both:
        probegen.evaluate(config=first.config, samples=5)
    assert both.value.field == "config"
    assert "samples" in str(both.value)
    with pytest.raises(ConfigError) as neither:
        probegen.evaluate()
    assert neither.value.field == "release"
