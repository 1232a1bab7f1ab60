"""``probegen.ask(...)``: one counterfactual question put to one model, as a stored run.

``probegen ask`` is a thin layer over :func:`ask`: every variant of the template is asked
``samples`` times through the managed model (retries, the store's response cache), each
answer or failure is recorded in a run of kind ``ask``, and the run is marked
``finished`` (``failed`` when a call still failed after its retries, ``interrupted`` on
Ctrl-C). Asking the same question again answers from the cache and sends nothing.

Errors name the arguments (a :class:`~probegen.errors.ConfigError` carries the field),
never CLI flags.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from probegen.answers import ProbeAnswers
from probegen.api_common import ModelLike, OwnedModels, in_own_thread_if_a_loop_runs, sampling
from probegen.corpora import GroupedVariant, load_corpora
from probegen.errors import ConfigError
from probegen.models.base import ChatModel, GenerateConfig
from probegen.models.managed import Model
from probegen.probe import Probe, Provenance
from probegen.run_dir import checked_run_dir
from probegen.run_lifecycle import recorded_run
from probegen.runner import query_probe
from probegen.store import Store

__all__ = ["AskResult", "ask"]


@dataclass(frozen=True, repr=False)
class AskResult:
    """What a model answered to every variant of one question, as the run stored it.

    Attributes:
        run_id: The ``ask`` run's id in the store.
        store_path: The run store.
        status: ``finished``, or ``failed`` when a call still failed after its retries.
        answers: The answers per variant key (a failed call is an answer with ``error``).
        failure: Why the run failed, or None.
    """

    run_id: str
    store_path: Path
    status: Literal["finished", "failed"]
    answers: ProbeAnswers
    failure: str | None

    def __repr__(self) -> str:
        answers = self.answers
        count = sum(len(a) for a in answers.answers.values())
        return (
            f"AskResult(run_id={self.run_id!r}, status={self.status!r}, "
            f"model={answers.model!r}, variants={len(answers.variants)}, answers={count}, "
            f"failed={len(answers.failures)})"
        )

    @property
    def probe(self) -> Probe:
        """The question asked."""
        return self.answers.probe

    def by_group(self) -> dict[str, list[str | None]]:
        """Each group's answers, in sample order (None for a call that failed)."""
        grouped: dict[str, list[str | None]] = defaultdict(list)
        for variant in self.answers.variants:
            grouped[variant.group] += [a.text for a in self.answers.answers[variant.key]]
        return dict(grouped)


def ask(
    target: ModelLike,
    template: str,
    *,
    attribute: str | None = None,
    attr: str | None = None,
    samples: int = 3,
    system_prompt: str | None = None,
    temperature: float = 0.7,
    max_tokens: int = 256,
    seed: int = 0,
    base_url: str | Sequence[str] | None = None,
    timeout_s: float | None = None,
    run_dir: str | Path | None = None,
    corpora_dir: str | Path | None = None,
) -> AskResult:
    """Ask every variant of ``template``, ``samples`` times each, and keep the answers.

    Example::

        import probegen

        result = probegen.ask("sim", "Should I hire {{James/Emily}} as a nurse?", attr="gender")
        for group, texts in result.by_group().items():
            print(group, texts[0])

    Args:
        target: A model spec, a :class:`~probegen.models.base.ChatModel`, or ``async def
            f(messages, config) -> str``; the run stores its spec (a function's is
            ``python:module:qualname``).
        template: The question, e.g. ``"Should I hire {{James/Emily}}?"``.
        attribute: The attribute its options name, e.g. ``gender`` or ``gender+race``.
        attr: Short for ``attribute``.
        samples: Answers per variant.
        system_prompt: A system message sent before every variant.
        temperature: Sampling temperature.
        max_tokens: Most tokens per answer.
        seed: Base seed; sample ``i`` uses ``seed + i``.
        base_url: Endpoint of an ``openai:`` / ``anthropic:`` spec, or a list of
            endpoints serving the same model (replicas).
        timeout_s: Per-attempt timeout of the model's calls.
        run_dir: Where the store goes (default ``$PROBEGEN_RUN_DIR`` or ``./runs``).
        corpora_dir: The corpora (default ``$PROBEGEN_CORPORA`` or the shipped ones).

    Returns:
        The finished (or failed) run; see :class:`AskResult`.

    Raises:
        ConfigError: An argument is missing or invalid (names it).
        ProbegenError: A template, attribute, spec, key or weights the question cannot
            be asked with, as one line; no run is left behind.
        RunInterrupted: Ctrl-C; the run is marked ``interrupted``.
    """
    if attr is not None:
        if attribute is not None:
            raise ConfigError("attr", "give attr or attribute, not both")
        attribute = attr
    if attribute is None:
        raise ConfigError("attribute", "missing", fix="e.g. attr='gender'")
    if samples < 1:
        raise ConfigError("samples", f"must be at least 1, got {samples}")
    config = sampling(temperature, max_tokens, seed)
    corpora = load_corpora(Path(corpora_dir) if corpora_dir else None)
    variants = corpora.variant_groups(template, attribute)
    probe = Probe(
        template=template,
        attribute=attribute,
        framing=corpora.infer_framing(template, attribute),
        provenance=Provenance(operator="cli"),
    )
    root = checked_run_dir(Path(run_dir) if run_dir else None)
    models = OwnedModels(timeout_s)
    backend = models.get(target, "target", base_url=base_url, url_field="base_url")
    run_config = {
        "command": "ask",
        "target": target if isinstance(target, str) else backend.spec,
        "base_url": base_url,
        "attribute": attribute,
        "template": template,
        "samples": samples,
        "system": system_prompt,
        "generate": config.model_dump(mode="json"),
    }

    def work() -> AskResult:
        try:
            with Store.in_run_dir(root) as store:
                run_id = store.create_run("ask", run_config)
                with recorded_run(store, run_id, f"run {run_id} interrupted"):
                    answers = asyncio.run(
                        _ask(backend, models, probe, variants, store, run_id,
                             samples, config, system_prompt)
                    )  # fmt: skip
                failures = len(answers.failures)
                failure = f"{failures} call(s) failed after retries" if failures else None
                store.finish_run(run_id, "failed" if failure else "finished", reason=failure)
                return AskResult(
                    run_id, store.path, "failed" if failure else "finished", answers, failure
                )
        finally:
            models.close()  # if the store failed before the models were used

    return in_own_thread_if_a_loop_runs(work)


async def _ask(
    backend: ChatModel,
    models: OwnedModels,
    probe: Probe,
    variants: list[GroupedVariant],
    store: Store,
    run_id: str,
    samples: int,
    config: GenerateConfig,
    system: str | None,
) -> ProbeAnswers:
    model = Model(
        backend, cache=store, on_event=lambda kind, data: store.log_event(run_id, kind, data)
    )
    try:
        return await query_probe(
            probe, variants, model, store, run_id,
            samples=samples, config=config, system_prompt=system,
        )  # fmt: skip
    finally:
        await models.aclose()  # in this loop: a client belongs to the loop that used it
