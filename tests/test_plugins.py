"""One registry for plugins (:mod:`probegen.plugins`): backends, scorers and operators by
entry point or by registration, one-line errors for an unknown name or a broken plugin,
and plugin objects passed straight to ``probegen.evolve``, recorded and asked for again
by ``probegen.resume``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import probegen
from probegen.embeddings import Embedder, TextEmbedder, Vectors, is_text_embedder
from probegen.errors import ConfigError, ModelSpecError, UsageError
from probegen.models import registry as models_registry
from probegen.models.base import ChatModel
from probegen.models.registry import BackendInfo, BackendOptions, list_backends, resolve_model
from probegen.mutation import MUTATORS, MutationContext, load_mutators, make_child
from probegen.plugins import Registry, object_ref
from probegen.probe import Probe
from probegen.scoring import SCORERS, Score, Scorer, StatsScorer, make_scorer
from probegen.scoring.base import ProbeAnswers
from probegen.search.archive import AddStatus, DescriptorSpace, Elite, MapElitesArchive
from probegen.store import Store

# --- plugins a third party would ship (entry points below name them in this module) ----


def _sim_backend(target: str, options: BackendOptions) -> ChatModel:
    from probegen.models.simulator import SimulatorBackend

    return SimulatorBackend(None)


ECHO_BACKEND = BackendInfo("echo", "echo", "a plugin's backend", "nothing", False, _sim_backend)
MISNAMED_BACKEND = BackendInfo(
    "other", "other", "a plugin's backend", "nothing", False, _sim_backend
)


class Suffix:
    """A real (if plain) operator: asks the parent's question, then asks for brevity."""

    name = "suffix"
    arity = 1
    needs_helper = False

    def __init__(self) -> None:
        self.calls = 0

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        self.calls += 1
        template = parents[0].template.rstrip() + " Answer in one sentence."
        return [make_child(parents, template, self.name, ctx)]


class CountingScorer:
    """The stats scorer, counting the probes it scores."""

    def __init__(self, embedder: TextEmbedder | None = None) -> None:
        self.inner = StatsScorer(embedder)
        self.scored = 0

    @property
    def name(self) -> str:
        return "counting"

    async def score(self, probe: Probe, answers: ProbeAnswers) -> Score:
        self.scored += 1
        return await self.inner.score(probe, answers)


def make_counting_scorer(arg: str, **options: Any) -> Scorer:
    """A scorer factory, as an entry point of ``probegen.scorers`` names one."""
    scorer = CountingScorer(options.get("embedder"))
    scorer.inner_arg = arg  # type: ignore[attr-defined]  # what the spec said after ':'
    return scorer


class CountingArchive(MapElitesArchive):
    """The MAP-Elites archive, counting the elites offered to it."""

    def __init__(self) -> None:
        super().__init__(DescriptorSpace(("groups", "superdomain", "framing", "form")))
        self.offered = 0

    def add(self, elite: Elite) -> AddStatus:
        self.offered += 1
        return super().add(elite)


class CountingEmbedder:
    """A :class:`TextEmbedder` that is not the shipped class: it delegates and counts."""

    def __init__(self) -> None:
        self.inner = Embedder()
        self.texts = 0

    @property
    def name(self) -> str:
        return "counting-minilm"

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        self.texts += len(texts)
        return self.inner.encode(texts, batch_size=batch_size)


def entry(name: str, attr: str, group: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"test_plugins:{attr}", group=group)


def fake_group(*entries: EntryPoint) -> Any:
    def discover(group: str) -> Iterable[EntryPoint]:
        return [e for e in entries if e.group == group]

    return discover


# --- the registry itself --------------------------------------------------------------------


def test_registration_lookup_and_names() -> None:
    registry: Registry[int] = Registry("probegen.test", "widget", discover=fake_group())
    registry.register("one", 1)
    assert registry.get("one") == 1
    assert "one" in registry
    assert "two" not in registry
    with pytest.raises(ValueError, match="already registered"):
        registry.register("one", 2)
    registry.register("one", 2, replace=True)
    assert registry.get("one") == 2
    with pytest.raises(ValueError, match="without ':'"):
        registry.register("a:b", 3)
    with pytest.raises(UsageError) as unknown:
        registry.get("three")
    assert str(unknown.value).startswith("unknown widget 'three'")
    assert "use one of: one" in str(unknown.value)
    assert "\n" not in str(unknown.value)


def test_entry_points_load_lazily_and_code_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    group = "probegen.test"

    class Counted(EntryPoint):
        def load(self) -> Any:
            loads.append(self.name)
            return super().load()

    entries = [
        Counted(name="suffix", value="test_plugins:Suffix", group=group),
        Counted(name="shadowed", value="test_plugins:Suffix", group=group),
    ]
    registry: Registry[object] = Registry(group, "widget", discover=fake_group(*entries))
    registry.register("shadowed", "from code")
    assert registry.names() == ["shadowed", "suffix"]
    assert loads == []  # listing names imports nothing
    assert registry.get("suffix") is Suffix
    assert registry.get("shadowed") == "from code"  # an entry point never replaces a built-in
    assert loads == ["suffix"]


def test_a_failing_entry_point_is_one_line_naming_it() -> None:
    broken = EntryPoint(name="broken", value="probegen_no_such_module:X", group="probegen.test")
    registry: Registry[object] = Registry("probegen.test", "widget", discover=fake_group(broken))
    with pytest.raises(UsageError) as caught:
        registry.get("broken")
    message = str(caught.value)
    assert message.startswith("widget plugin 'broken' (probegen_no_such_module:X) failed")
    assert "ModuleNotFoundError: No module named 'probegen_no_such_module'" in message
    assert "(fix: " in message
    assert "\n" not in message


def test_an_installed_entry_point_names_its_distribution() -> None:
    registry: Registry[object] = Registry("probegen.mutators", "mutator")
    assert "reframe" in registry.names()
    assert registry.origin("reframe") == (
        "'reframe' (mutators.reframe:Reframe) from distribution 'probegen'"
    )


def test_object_ref_names_functions_classes_and_instances() -> None:
    assert object_ref(make_counting_scorer) == "python:test_plugins:make_counting_scorer"
    assert object_ref(Suffix) == object_ref(Suffix()) == "python:test_plugins:Suffix"


# --- backends --------------------------------------------------------------------------------


@pytest.fixture
def plugin_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The three groups as a plugin package would fill them."""
    discover = fake_group(
        entry("echo", "ECHO_BACKEND", "probegen.models"),
        entry("misnamed", "MISNAMED_BACKEND", "probegen.models"),
        entry("counting", "make_counting_scorer", "probegen.scorers"),
        entry("notafactory", "ECHO_BACKEND.name", "probegen.scorers"),
        entry("suffix", "Suffix", "probegen.mutators"),
    )
    for registry in (models_registry.BACKENDS, SCORERS):
        monkeypatch.setattr(registry, "_discover", discover)
        registry.refresh()
    monkeypatch.setattr("probegen.mutation.entry_points", lambda group: discover(group))
    yield
    for registry in (models_registry.BACKENDS, SCORERS):
        registry.refresh()


@pytest.mark.usefixtures("plugin_entry_points")
def test_a_backend_by_entry_point() -> None:
    model = resolve_model("echo")
    assert type(model).__name__ == "SimulatorBackend"
    assert models_registry.BACKENDS.names()[-2:] == ["echo", "misnamed"]
    with pytest.raises(UsageError) as caught:
        resolve_model("misnamed")
    assert "model backend plugin 'misnamed' (test_plugins:MISNAMED_BACKEND)" in str(caught.value)
    assert "calls itself 'other'" in str(caught.value)
    with pytest.raises(UsageError):
        list_backends()  # a broken backend plugin is reported, not skipped


def test_a_backend_by_registration() -> None:
    info = BackendInfo("echo2", "echo2", "registered in code", "nothing", False, _sim_backend)
    models_registry.register_backend(info)
    try:
        assert list_backends()[-1] == info
        assert type(resolve_model("echo2:anything")).__name__ == "SimulatorBackend"
    finally:
        models_registry.BACKENDS.unregister("echo2")
    with pytest.raises(ModelSpecError, match="unknown model spec 'echo2'"):
        resolve_model("echo2")


# --- scorers ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("plugin_entry_points")
def test_a_scorer_by_entry_point() -> None:
    scorer = make_scorer("counting:fast")
    assert isinstance(scorer, CountingScorer)
    assert scorer.inner_arg == "fast"  # type: ignore[attr-defined]
    assert isinstance(make_scorer("stats"), StatsScorer)
    with pytest.raises(ConfigError) as unknown:
        make_scorer("countin")
    assert unknown.value.field == "judge"
    assert "counting" in str(unknown.value)  # the plugin is listed with the built-ins
    with pytest.raises(UsageError) as broken:
        make_scorer("notafactory")
    assert "scorer plugin 'notafactory'" in str(broken.value)
    assert "is not a scorer factory" in str(broken.value)


def test_a_scorer_by_registration() -> None:
    SCORERS.register("counting2", make_counting_scorer)
    try:
        assert isinstance(make_scorer("counting2"), CountingScorer)
    finally:
        SCORERS.unregister("counting2")
    with pytest.raises(ConfigError, match=r"^judge 'counting2'"):
        make_scorer("counting2")


# --- mutators --------------------------------------------------------------------------------


@pytest.mark.usefixtures("plugin_entry_points")
def test_a_mutator_by_entry_point() -> None:
    assert list(load_mutators(helper_available=False)) == ["suffix"]
    assert isinstance(load_mutators(["suffix"], helper_available=False)["suffix"], Suffix)


def test_a_mutator_by_registration_and_as_an_object() -> None:
    MUTATORS.register("suffix", Suffix)
    try:
        loaded = load_mutators(["suffix", "reframe"], helper_available=False)
        assert list(loaded) == ["suffix", "reframe"]
        assert isinstance(loaded["suffix"], Suffix)
    finally:
        MUTATORS.unregister("suffix")
    mine = Suffix()
    assert load_mutators([mine, "reframe"], helper_available=False)["suffix"] is mine
    with pytest.raises(ConfigError, match="called 'suffix'"):
        load_mutators([mine, Suffix()], helper_available=False)
    with pytest.raises(ConfigError, match="is a class") as a_class:
        load_mutators([Suffix], helper_available=False)  # type: ignore[list-item]
    assert a_class.value.field == "mutators"


# --- objects passed to a run -----------------------------------------------------------------


def test_the_embedder_protocol() -> None:
    assert is_text_embedder(CountingEmbedder.__new__(CountingEmbedder))
    assert is_text_embedder(Embedder())
    assert not is_text_embedder("minilm")
    assert not is_text_embedder(CountingEmbedder)  # a class makes one; it is not one


def test_a_run_uses_the_objects_passed_and_resume_needs_them(tmp_path: Path) -> None:
    suffix, embedder = Suffix(), CountingEmbedder()
    scorer, archive = CountingScorer(embedder), CountingArchive()
    result = probegen.evolve(
        target="sim",
        attr="gender",
        generations=1,
        population=4,
        mutators=[suffix, "reframe"],
        scorer=scorer,
        archive=archive,
        embedder=embedder,
        run_dir=tmp_path,
    )
    assert result.status == "finished"
    assert suffix.calls > 0
    assert scorer.scored > 0
    assert archive.offered > 0
    assert embedder.texts > 0
    assert len(result.elites) == len(archive.elites())
    config = result.config
    assert config.mutators == ("python:test_plugins:Suffix", "reframe")
    assert config.judge == "python:test_plugins:CountingScorer"
    assert config.archive == "python:test_plugins:CountingArchive"
    assert config.embedder == "python:test_plugins:CountingEmbedder"
    with Store.in_run_dir(tmp_path) as store:
        run = store.get_run(result.run_id)
    assert run is not None
    assert run.config["evolve"]["archive"] == "python:test_plugins:CountingArchive"

    objects: dict[str, object] = {
        "mutators": [Suffix(), "reframe"],
        "scorer": CountingScorer(embedder),
        "archive": CountingArchive(),
        "embedder": embedder,
    }
    for missing in objects:
        passed = {name: value for name, value in objects.items() if name != missing}
        with pytest.raises(ConfigError) as caught:
            probegen.resume(result.run_id, run_dir=tmp_path, **passed)  # type: ignore[arg-type]
        assert caught.value.field == missing
        assert "not stored with the run" in str(caught.value)
    with pytest.raises(ConfigError) as other:
        probegen.resume(
            result.run_id,
            run_dir=tmp_path,
            **{**objects, "archive": MapElitesArchive(DescriptorSpace(("groups",)))},  # type: ignore[arg-type]
        )
    assert other.value.field == "archive"
    resumed = probegen.resume(result.run_id, run_dir=tmp_path, **objects)  # type: ignore[arg-type]
    assert resumed.status == "finished"
    assert [e.probe_id for e in resumed.elites] == [e.probe_id for e in result.elites]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scorer": object()}, "scorer"),
        ({"scorer": CountingScorer.__new__(CountingScorer), "judge": "stats"}, "scorer"),
        ({"archive": object()}, "archive"),
        ({"archive": "python:x:Y"}, "archive"),
        ({"embedder": 3}, "embedder"),
        ({"mutators": [object()]}, "mutators"),
    ],
)
def test_a_bad_plugin_object_names_its_argument(
    tmp_path: Path, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        probegen.evolve(target="sim", attr="gender", run_dir=tmp_path / "runs", **fields)
    assert caught.value.field == field
    assert not (tmp_path / "runs").exists()


def test_the_readme_plugin_objects_block_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("#### Plugins as objects in a Python run", 1)[1]
    block = section.split("```py\n", 1)[1].split("\n```", 1)[0]
    monkeypatch.setenv("PROBEGEN_RUN_DIR", str(tmp_path / "runs"))
    namespace: dict[str, object] = {"MyOperator": Suffix}
    exec(compile(block, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert isinstance(result, probegen.EvolveResult)
    assert result.config.mutators == ("python:test_plugins:Suffix", "reframe")
