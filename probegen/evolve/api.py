"""``probegen.evolve(...)`` and ``probegen.resume(...)``: the search as a library call.

The CLI's ``probegen evolve`` is a thin layer over these two functions, so a run started
from a notebook or a script is a whole run: stored, ``finished`` (or ``failed`` or
``interrupted``), with ``runs/<run-id>/elites.jsonl`` and the stored elites that
``probegen review`` and ``probegen release`` read.

Errors name :class:`~probegen.evolve.config.EvolveConfig` fields (a
:class:`~probegen.errors.ConfigError` carries the field), never CLI flags; the CLI says
the flag instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from probegen.api_common import in_own_thread_if_a_loop_runs
from probegen.corpora import Corpora, load_corpora
from probegen.embeddings import TextEmbedder, is_text_embedder
from probegen.errors import ConfigError, UsageError
from probegen.evolve.config import EvolveConfig
from probegen.evolve.lifecycle import (
    EvolveResult,
    PluginObjects,
    RunInterrupted,
    build_parts,
    execute,
)
from probegen.evolve.run import ProgressHandler
from probegen.models.base import ChatModel
from probegen.models.function import PYTHON_PREFIX, as_chat_model
from probegen.mutation import Mutator, check_mutator
from probegen.plugins import object_ref
from probegen.redaction import REDACTED, redact_config
from probegen.run_dir import checked_run_dir
from probegen.scoring import Scorer, resolved_scorer_spec
from probegen.search.archive import Archive
from probegen.store import STORE_FILENAME, Store

__all__ = [
    "MODEL_FIELDS",
    "PLAIN_STATS_UNTIL",
    "SENTENCES_UNTIL",
    "URL_FIELDS",
    "WHOLE_AGAIN_UNTIL",
    "WHOLE_ANSWERS_UNTIL",
    "EvolveResult",
    "RunInterrupted",
    "as_it_searched",
    "evolve",
    "make_config",
    "resume",
]

MODEL_FIELDS = ("target", "judge", "mutator_model")
"""The fields that take a model: a spec string, a ChatModel or an async function."""

URL_FIELDS = {
    "target": "target_base_url",
    "judge": "judge_base_url",
    "mutator_model": "mutator_base_url",
}
"""The endpoint field of each model field."""


def evolve(
    config: EvolveConfig | None = None,
    /,
    *,
    run_dir: str | Path | None = None,
    corpora_dir: str | Path | None = None,
    top: int = 5,
    on_progress: ProgressHandler | None = None,
    **fields: Any,
) -> EvolveResult:
    """Evolve probes that make ``target`` treat groups differently; return the run.

    Example::

        import probegen

        result = probegen.evolve(target="sim", attr="gender", generations=2, population=6)
        for elite in result.elites[:3]:
            print(f"{elite.fitness:.2f}", result.probe(elite).template)

    Args:
        config: A whole configuration; keyword ``fields`` override its fields.
        run_dir: Where the store and ``<run-id>/`` go (default ``$PROBEGEN_RUN_DIR`` or
            ``./runs``).
        corpora_dir: The corpora (default ``$PROBEGEN_CORPORA`` or the shipped ones).
        top: Probes shown in ``summary.md``.
        on_progress: ``on_progress(kind, fields)`` for a live display: ``run_start``,
            ``generation_start``, ``probe_done``, ``generation_end``, ``concluding``.
        **fields: :class:`EvolveConfig` fields (``attr`` is accepted for ``attribute``,
            and resolved through the corpora: ``Gender`` -> ``gender``). ``target``,
            ``judge`` and ``mutator_model`` may also be a
            :class:`~probegen.models.base.ChatModel` or an ``async def f(messages,
            config) -> str`` (a judge one is used as ``judge:`` model); the run stores
            their ``spec`` (a function's is ``python:module:qualname``). Plugins may be
            passed as objects too: ``mutators`` (operator objects and names mixed),
            ``scorer`` (a :class:`~probegen.scoring.Scorer`, instead of ``judge``),
            ``archive`` (a :class:`~probegen.search.archive.Archive`) and ``embedder``
            (a :class:`~probegen.embeddings.TextEmbedder`); the run records each as
            ``python:module:qualname``, and :func:`resume` needs them passed again.

    Returns:
        The finished (or failed) run; see :class:`EvolveResult`.

    Raises:
        ConfigError: A field is missing, unknown or invalid (names the field).
        ProbegenError: Anything else the run cannot start with (a spec, a key, weights,
            corpora, seeds), as one line; no run is left behind.
        RunInterrupted: Ctrl-C; the run is ``interrupted`` and :func:`resume` continues it.
    """
    _check_top(top)
    corpora = load_corpora(Path(corpora_dir) if corpora_dir else None)
    values: dict[str, Any] = config.model_dump() if config is not None else {}
    if "attr" in fields:
        if "attribute" in fields:
            raise ConfigError("attr", "give attr or attribute, not both")
        fields["attribute"] = fields.pop("attr")
    given = _model_objects(fields)
    plugins = _plugin_objects(fields)
    values.update(fields)
    if isinstance(values.get("attribute"), str):
        values["attribute"] = _attribute(corpora, values["attribute"])
    resolved = make_config(values)
    _check_plugins_passed(resolved, plugins, "")
    root = checked_run_dir(Path(run_dir) if run_dir else None)
    return in_own_thread_if_a_loop_runs(
        lambda: execute(
            resolved,
            corpora,
            root,
            build_parts(resolved, corpora, given, run_root=root, plugins=plugins),
            top=top,
            on_progress=on_progress,
        )
    )


def resume(
    run_id: str,
    *,
    run_dir: str | Path | None = None,
    corpora_dir: str | Path | None = None,
    target: str | ChatModel | Callable[..., Any] | None = None,
    judge: str | ChatModel | Callable[..., Any] | None = None,
    mutator_model: str | ChatModel | Callable[..., Any] | None = None,
    target_base_url: str | Sequence[str] | None = None,
    judge_base_url: str | None = None,
    mutator_base_url: str | None = None,
    timeout_s: float | None = None,
    top: int = 5,
    on_progress: ProgressHandler | None = None,
    mutators: Sequence[Mutator | str] | None = None,
    scorer: Scorer | None = None,
    archive: Archive | None = None,
    embedder: TextEmbedder | None = None,
) -> EvolveResult:
    """Continue a run that was killed or interrupted, from its stored configuration.

    The search replays from the start: every call that finished is answered from the
    store's cache, so nothing finished is sent again and the result is the run an
    uninterrupted search would have made.

    Args:
        run_id: The run.
        run_dir: The run directory the run was started in.
        corpora_dir: The corpora (default as in :func:`evolve`).
        target: The run's model object or function again; needed when the run's model
            was a Python function (``python:...``), which is not stored.
        judge: Likewise for a judge given as an object or function.
        mutator_model: Likewise for the mutation helper.
        target_base_url: The run's endpoint again (or its endpoints, in the same
            order): a URL's credentials are stored redacted, so a run whose URL had any
            needs it; it must be the run's URL.
        judge_base_url: Likewise for the judge.
        mutator_base_url: Likewise for the helper.
        timeout_s: Another per-attempt timeout (it does not change the run).
        top: Probes shown in ``summary.md``.
        on_progress: As in :func:`evolve`.
        mutators: The run's operators again, when it was given operator objects
            (only their ``python:module:qualname`` is stored).
        scorer: Likewise for a scorer object.
        archive: Likewise for an archive object.
        embedder: Likewise for an embedder object.

    Raises:
        ConfigError: No such run, its configuration is unreadable, or a model, URL or
            plugin object is missing or not the run's (names the field).
    """
    _check_top(top)
    corpora = load_corpora(Path(corpora_dir) if corpora_dir else None)
    root = checked_run_dir(Path(run_dir) if run_dir else None)
    config = _stored_config(root, run_id)
    passed = {"target": target, "judge": judge, "mutator_model": mutator_model}
    given = _model_objects({k: v for k, v in passed.items() if v is not None})
    _check_models_passed_again(config, run_id, passed, given)
    objects = {"mutators": mutators, "scorer": scorer, "archive": archive, "embedder": embedder}
    plugin_fields = {k: v for k, v in objects.items() if v is not None}
    plugins = _plugin_objects(plugin_fields)
    _check_plugins_passed(config, plugins, run_id, plugin_fields)
    config = with_urls_passed_again(
        config,
        run_id,
        {
            "target_base_url": target_base_url,
            "judge_base_url": judge_base_url,
            "mutator_base_url": mutator_base_url,
        },
    )
    if timeout_s is not None:
        config = make_config({**config.model_dump(), "timeout_s": timeout_s})
    return in_own_thread_if_a_loop_runs(
        lambda: execute(
            config,
            corpora,
            root,
            build_parts(config, corpora, given, run_root=root, plugins=plugins),
            run_id=run_id,
            top=top,
            on_progress=on_progress,
        )
    )


def make_config(fields: Mapping[str, Any]) -> EvolveConfig:
    """An :class:`EvolveConfig` from ``fields``; a value it refuses is a
    :class:`ConfigError` naming the (first) field."""
    try:
        return EvolveConfig.model_validate(dict(fields))
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "config"
        if first["type"] == "extra_forbidden":
            raise ConfigError(
                name, "no such field", fix="see EvolveConfig for the fields a run takes"
            ) from None
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(name, message, fix=f"see EvolveConfig.{name}") from None


PLAIN_STATS_UNTIL = "2026-12-04T22:45:41"
"""When a bare ``stats`` stopped meaning the plain many-group level (commit 91c5828):
a run stored with it before then read ``stats:plain``."""
WHOLE_ANSWERS_UNTIL = "2026-12-07T06:30:00"
"""When a bare ``stats`` began to mean answers read by their sentences: a run stored
with it before then (and after :data:`PLAIN_STATS_UNTIL`) read ``stats:continuous``."""
SENTENCES_UNTIL = "2026-12-07T11:45:00"
"""When a bare ``stats`` went back to whole answers (``stats:continuous``), after the
sentence reading seemed to lose the held-out age set (the benchmark's shared draws, as
found later that day: ``benchmarks/RESULTS.md`` finding 33): a run stored with it from
:data:`WHOLE_ANSWERS_UNTIL` until then read ``stats:sentences``. Runs stored since keep
the reading spelled out (:func:`probegen.scoring.resolved_scorer_spec`)."""
WHOLE_AGAIN_UNTIL = "2026-12-07T16:30:00"
"""When a bare ``stats`` went back to answers read by their sentences, every set having
been re-measured with independent draws per benchmark run (first hit on
``planted.yaml`` 0.92x whole answers', p = 0.012; no set significantly worse): a run
stored with it from :data:`SENTENCES_UNTIL` until then read ``stats:continuous``."""


def as_it_searched(stored: object, created_at: str | None = None) -> object:
    """A stored configuration, completed with the settings its run searched with when
    it was stored before they existed, so that its replay searches the same way: before
    emitters and the surrogate, the operators emitter alone, every candidate queried;
    before ``uniform_parents``, parents drawn from the fittest elites only; before
    ``reward``, the bonus rule; before ``exploit_after``, exploring to the end; before
    ``local_radius``, no local competition; a bare ``stats`` judge stored before
    :data:`PLAIN_STATS_UNTIL` (the run's ``created_at``), the plain level, before
    :data:`WHOLE_ANSWERS_UNTIL` whole answers, before :data:`SENTENCES_UNTIL`
    answers read by their sentences, and before :data:`WHOLE_AGAIN_UNTIL` whole answers."""
    if not isinstance(stored, dict):
        return stored
    judge = str(stored.get("judge", "stats")).strip()
    if judge == "stats" and created_at is not None and created_at < PLAIN_STATS_UNTIL:
        stored = {**stored, "judge": "stats:plain"}
    elif judge == "stats" and created_at is not None and created_at < WHOLE_ANSWERS_UNTIL:
        stored = {**stored, "judge": "stats:continuous"}
    elif judge == "stats" and created_at is not None and created_at < SENTENCES_UNTIL:
        stored = {**stored, "judge": "stats:sentences"}
    elif judge == "stats" and created_at is not None and created_at < WHOLE_AGAIN_UNTIL:
        stored = {**stored, "judge": "stats:continuous"}
    if "surrogate" not in stored:
        stored = {**stored, "emitters": ["operators"], "surrogate": False}
    if "uniform_parents" not in stored:
        stored = {**stored, "uniform_parents": 0.0}
    if "reward" not in stored:
        stored = {**stored, "reward": "bonus"}
    if "exploit_after" not in stored:
        stored = {**stored, "exploit_after": 1.0}
    if "local_radius" not in stored:
        stored = {**stored, "local_radius": 0.0}
    return stored


def with_urls_passed_again(
    config: EvolveConfig, run_id: str, passed: Mapping[str, str | Sequence[str] | None]
) -> EvolveConfig:
    """The stored ``config`` of a resumed run, with the endpoint URLs passed again.

    A URL's credentials and query-string values are stored redacted, never in clear, so
    resuming such a run needs the URL again; it must be the URL the run was started with
    (the same once redacted). A URL given to resume a run that stored no secret must
    match too, so a resume never moves a run to another server.

    Args:
        config: The stored configuration.
        run_id: The run, for messages.
        passed: URL field -> the URL passed again (None: not passed).

    Raises:
        ConfigError: A URL is missing or not the run's (names the URL field).
    """
    update: dict[str, str | tuple[str, ...]] = {}
    for name in URL_FIELDS.values():
        stored_urls: str | tuple[str, ...] | None = getattr(config, name)
        # Replicas (several URLs) are compared as one list, in order.
        stored = stored_urls if not isinstance(stored_urls, tuple) else ", ".join(stored_urls)
        given = passed.get(name)
        url: str | tuple[str, ...] | None = None
        if given:
            url = given if isinstance(given, str) else tuple(given)
            url = url[0] if len(url) == 1 and isinstance(url, tuple) else url
        if url is None:
            if stored is not None and REDACTED in stored:
                raise ConfigError(
                    name,
                    f"run {run_id}'s URL {stored} is stored without its credentials",
                    fix="pass it again: the full URL the run was started with",
                )
            continue
        shown = redact_config(url) if isinstance(url, str) else ", ".join(redact_config(url))
        if shown != stored:
            raise ConfigError(
                name,
                f"{shown} is not the URL the run was started with ({stored or 'none'}; run "
                f"{run_id})",
                fix="pass the run's own URL, or none",
            )
        update[name] = url
    return config.model_copy(update=update)


def _check_top(top: int) -> None:
    if top < 0:
        raise ConfigError("top", f"must be 0 or more, got {top}")


def _attribute(corpora: Corpora, spec: str) -> str:
    """The canonical attribute spec (``Gender`` -> ``gender``), as the corpora define it."""
    try:
        return corpora.spec(spec)
    except UsageError as error:
        raise ConfigError("attribute", error.message, fix=error.fix) from None


def _model_objects(fields: dict[str, Any]) -> dict[str, ChatModel]:
    """Replace each model object or function in ``fields`` by its spec (what the run
    stores); return the objects by field."""
    given: dict[str, ChatModel] = {}
    for name in MODEL_FIELDS:
        value = fields.get(name)
        if value is None:
            continue
        if isinstance(value, str) and value.startswith(PYTHON_PREFIX):
            raise ConfigError(
                name,
                f"{value} names a Python function, which is never imported from a name",
                fix="pass the function itself",
            )
        backend = as_chat_model(value, name)
        if backend is None:
            continue
        given[name] = backend
        fields[name] = f"judge:{backend.spec}" if name == "judge" else backend.spec
        url = URL_FIELDS[name]
        if fields.get(url):
            raise ConfigError(url, f"applies to a model spec, not to {backend.spec}")
    return given


def _stored_config(root: Path, run_id: str) -> EvolveConfig:
    path = root / STORE_FILENAME
    if not path.exists():
        raise ConfigError(
            "run_id",
            f"no run store at {path} to resume {run_id} from",
            fix="pass the run directory the run was started in",
        )
    with Store(path) as store:
        run = store.get_run(run_id)
    if run is None or run.kind != "evolve":
        raise ConfigError(
            "run_id",
            f"no evolve run {run_id} in {path}",
            fix="see the run ids printed by earlier runs, or in runs/*/config.json",
        )
    try:
        return EvolveConfig.model_validate(as_it_searched(run.config["evolve"], run.created_at))
    except (KeyError, ValidationError) as error:
        raise ConfigError(
            "run_id",
            f"the stored configuration of {run_id} cannot be read by this probegen "
            f"({type(error).__name__})",
            fix="resume with the probegen version that started the run",
        ) from None


def _check_models_passed_again(
    config: EvolveConfig,
    run_id: str,
    passed: Mapping[str, object],
    given: Mapping[str, ChatModel],
) -> None:
    """A model passed to a resume must be the run's own; a run's Python function must be
    passed, since only its name is stored."""
    for name in MODEL_FIELDS:
        stored = getattr(config, name)
        if passed.get(name) is None:
            # A judge model is stored as judge:SPEC; a bare python: judge is a scorer
            # object, which _check_plugins_passed asks for.
            model_spec = stored
            if name == "judge":
                model_spec = stored.removeprefix("judge:") if stored.startswith("judge:") else ""
            if model_spec and model_spec.startswith(PYTHON_PREFIX):
                raise ConfigError(
                    name,
                    f"run {run_id} used the Python function {model_spec}, which is not "
                    "stored with the run",
                    fix="pass the same function again",
                )
            continue
        backend = given.get(name)
        spec = passed[name] if backend is None else backend.spec
        if name == "judge":
            spec = resolved_scorer_spec(f"judge:{spec}" if backend is not None else str(spec))
        if spec != stored:
            raise ConfigError(
                name,
                f"{spec} is not run {run_id}'s model ({stored or 'none'})",
                fix="pass the run's own model, or none",
            )


def _plugin_objects(fields: dict[str, Any]) -> PluginObjects:
    """Take the plugin objects out of ``fields``, leaving what the run records of them
    (``python:module:qualname``, see :func:`probegen.plugins.object_ref`)."""
    for name in ("archive", "embedder"):
        value = fields.get(name)
        if isinstance(value, str) and value.startswith(PYTHON_PREFIX):
            raise ConfigError(
                name,
                f"{value} names a Python object, which is never imported from a name",
                fix="pass the object itself",
            )
    mutators: tuple[Mutator | str, ...] | None = None
    listed = fields.get("mutators")
    if listed is not None and not isinstance(listed, str):
        items = [v if isinstance(v, str) else check_mutator(v) for v in listed]
        if any(not isinstance(item, str) for item in items):
            mutators = tuple(items)
            fields["mutators"] = tuple(_recorded(item) for item in items)
    scorer = fields.pop("scorer", None)
    if scorer is not None:
        if not isinstance(scorer, Scorer):
            raise ConfigError("scorer", f"{scorer!r} is not a scorer", fix=_SCORER_FIX)
        if fields.get("judge") is not None:
            raise ConfigError("scorer", "give scorer or judge, not both")
        fields["judge"] = object_ref(scorer)
    archive = fields.get("archive")
    if archive is not None:
        if not isinstance(archive, Archive):
            raise ConfigError("archive", f"{archive!r} is not an archive", fix=_ARCHIVE_FIX)
        fields["archive"] = object_ref(archive)
    embedder = fields.get("embedder")
    if embedder is not None and not isinstance(embedder, str):
        if not is_text_embedder(embedder):
            raise ConfigError("embedder", f"{embedder!r} is not an embedder", fix=_EMBEDDER_FIX)
        fields["embedder"] = object_ref(embedder)
    else:
        embedder = None
    return PluginObjects(mutators, scorer, archive, embedder)


_SCORER_FIX = "implement probegen.scoring.Scorer (name, async score(probe, answers))"
_ARCHIVE_FIX = "implement probegen.search.archive.Archive, or leave it to the selection"
_EMBEDDER_FIX = "implement probegen.embeddings.TextEmbedder (name, dimension, encode)"


def _recorded(item: Mutator | str) -> str:
    return item if isinstance(item, str) else object_ref(item)


def _check_plugins_passed(
    config: EvolveConfig,
    plugins: PluginObjects,
    run_id: str,
    passed: Mapping[str, object] | None = None,
) -> None:
    """Every plugin object the configuration records (``python:...``) must be passed,
    as the same kind of object; a resume's must be the run's own.

    Args:
        config: The run's configuration (recorded, or being started).
        plugins: The objects passed.
        run_id: The run being resumed; empty for a new run.
        passed: The plugin arguments given to a resume (None for a new run).
    """
    recorded = {
        "mutators": config.mutators,
        "scorer": config.judge,
        "archive": config.archive,
        "embedder": config.embedder,
    }
    given = {
        "mutators": plugins.mutators,
        "scorer": plugins.scorer,
        "archive": plugins.archive,
        "embedder": plugins.embedder,
    }
    whose = f"run {run_id}" if run_id else "the configuration"
    for name, stored in recorded.items():
        refs = stored if isinstance(stored, tuple) else (stored,) if stored else ()
        if given[name] is None and any(ref.startswith(PYTHON_PREFIX) for ref in refs):
            shown = ", ".join(ref for ref in refs if ref.startswith(PYTHON_PREFIX))
            raise ConfigError(
                name,
                f"{whose} used the Python object {shown}, which is not stored with the run",
                fix=f"pass the same object again ({name}=...)",
            )
        if passed is None or name not in passed:
            continue
        value, raw = given[name], passed[name]
        mine: object
        if isinstance(value, tuple):
            mine = tuple(_recorded(item) for item in value)
        elif value is not None:
            mine = object_ref(value)
        else:  # names only: compared as the run stored them
            mine = tuple(raw) if isinstance(raw, list | tuple) else raw
        if mine != stored:
            raise ConfigError(
                name,
                f"{mine} is not {whose}'s ({stored or 'none'})",
                fix=f"pass the run's own {name}, or none",
            )
