"""Mutation operators for ``probegen evolve``: the plugin protocol, the registry, the child check.

An operator is any object with ``name``, ``arity``, ``needs_helper`` and an async
``mutate(parents, ctx)`` that returns zero or more candidate children. Operators are found
through the ``probegen.mutators`` entry-point group, so the shipped ones (in the
top-level ``mutators`` package) and a third party's are loaded the same way::

    [project.entry-points."probegen.mutators"]
    my_operator = "my_package.module:MyOperator"

An entry point may name a class (instantiated without arguments) or a ready instance.
The entry points fill the :data:`MUTATORS` registry (:mod:`probegen.plugins`), where
code can also register an operator by name; a run can be given operator objects
directly as well (``probegen.evolve(..., mutators=[...])``, see :func:`check_mutator`).
An operator that only makes sense for targets that can see images sets the optional
attribute ``needs_images = True``; it is then left out of searches on text-only targets,
which run exactly as if it were not installed.

Operators may propose children that turn out invalid; the search filters them with
:func:`validate_child`, whose reasons start with a short category (``invalid template:``,
``unchanged:``, ...) so rejections can be counted per category. Near-duplicates are
caught later by the search's embedding index, not here.
"""

from __future__ import annotations

import inspect
import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

from probegen import template as tpl
from probegen.corpora import Corpora
from probegen.errors import ConfigError, ProbegenError, UsageError
from probegen.models import GenerateConfig, Model
from probegen.plugins import Registry
from probegen.probe import MediaPart, Modality, Probe, Provenance, QuestionForm

__all__ = [
    "ENTRY_POINT_GROUP",
    "MUTATORS",
    "MutationContext",
    "Mutator",
    "check_mutator",
    "keep_options_literal",
    "load_mutators",
    "make_child",
    "needs_images",
    "same_question",
    "validate_child",
]

ENTRY_POINT_GROUP = "probegen.mutators"


def _entry_points(group: str) -> list[EntryPoint]:
    # Looked up at call time, so a test can replace this module's ``entry_points``.
    return list(entry_points(group=group))


MUTATORS: Registry[object] = Registry(ENTRY_POINT_GROUP, "mutator", discover=_entry_points)
"""Operators by name: a class (made per run) or an instance. :func:`load_mutators`
re-reads the entry points on every call, as it always has."""


def _default_helper_config() -> GenerateConfig:
    # Rewrites should be diverse, and a list of five candidates with their
    # probabilities needs room.
    return GenerateConfig(temperature=1.0, max_tokens=400)


@dataclass
class MutationContext:
    """What an operator may use besides its parents.

    Attributes:
        corpora: Attributes, names, taxonomy and seeds; operators read their wording
            from the corpora directory too (``framings.yaml``).
        attribute: The run's attribute spec, e.g. ``gender`` or ``gender+race``.
        rng: The only source of randomness an operator may use, so a seeded run repeats.
        helper: A helper LLM for operators that need one (the run's ``mutator_model``).
        helper_config: Sampling parameters for helper calls.
        run_dir: Where the run's images live (``<run_dir>/media/``, see
            :mod:`probegen.media`); operators that make images store them there.
        accepts_images: Whether the target can see images. Operators propose image
            children only when it can, and :func:`validate_child` rejects them otherwise,
            so a text-only target never gets a probe it cannot be asked.
    """

    corpora: Corpora
    attribute: str
    rng: random.Random
    helper: Model | None = None
    helper_config: GenerateConfig = field(default_factory=_default_helper_config)
    run_dir: Path | None = None
    accepts_images: bool = False


@runtime_checkable
class Mutator(Protocol):
    """A mutation operator.

    Attributes:
        name: The operator's name, equal to its entry-point name.
        arity: How many parents ``mutate`` consumes: 1, or 2 for crossover.
        needs_helper: Whether it needs ``ctx.helper`` (a helper LLM).

    An operator may also set ``opt_in = True``: it is then loaded only where a run names
    it, never by default (:func:`load_mutators`).
    """

    name: str
    arity: int
    needs_helper: bool

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """Propose children of ``parents``; an empty list when the operator does not apply."""
        ...


# --- registry --------------------------------------------------------------------------------


def _instantiate(name: str) -> Mutator:
    loaded = MUTATORS.get(name)
    try:
        mutator: Any = loaded() if inspect.isclass(loaded) else loaded
    except Exception as error:
        raise MUTATORS.error(
            name,
            f"could not be created: {type(error).__name__}: {error}",
            "an operator class must be constructible without arguments",
        ) from None
    problem = _not_a_mutator(mutator, name)
    if problem:
        raise MUTATORS.error(name, *problem)
    return cast(Mutator, mutator)


def _unique(items: Sequence[str | Mutator]) -> list[str | Mutator]:
    # A name given twice is one operator, as it always was; objects are kept as given.
    seen: set[str] = set()
    kept: list[str | Mutator] = []
    for item in items:
        if isinstance(item, str):
            if item in seen:
                continue
            seen.add(item)
        kept.append(item)
    return kept


def check_mutator(value: object, field: str = "mutators") -> Mutator:
    """``value`` as an operator, after the checks an entry point's operator passes.

    Raises:
        ConfigError: ``value`` is not an operator (names ``field``).
    """
    if inspect.isclass(value):
        raise ConfigError(field, f"{value.__qualname__} is a class", fix="pass an instance of it")
    problem = _not_a_mutator(value, None)
    if problem:
        raise ConfigError(field, f"{value!r} {problem[0]}", fix=problem[1])
    return cast(Mutator, value)


def _not_a_mutator(mutator: Any, name: str | None) -> tuple[str, str] | None:
    """What is wrong with ``mutator`` (problem, fix), or None; ``name``: its entry point's."""
    missing = [
        attr
        for attr, kind in (("name", str), ("arity", int), ("needs_helper", bool))
        if not isinstance(getattr(mutator, attr, None), kind)
    ]
    if not inspect.iscoroutinefunction(getattr(mutator, "mutate", None)):
        missing.append("async mutate(parents, ctx)")
    if missing:
        return (
            f"is not a mutation operator: missing or wrong {', '.join(missing)}",
            "implement probegen.mutation.Mutator (name: str, arity: int, needs_helper: "
            "bool, async mutate)",
        )
    if name is not None and mutator.name != name:
        return (
            f"calls itself '{mutator.name}'",
            "make the operator's name equal to its entry-point name",
        )
    if mutator.arity not in (1, 2):
        return f"has arity {mutator.arity}", "use arity 1 or 2"
    return None


def needs_images(mutator: Mutator) -> bool:
    """Whether an operator only proposes image probes (optional ``needs_images``)."""
    return bool(getattr(mutator, "needs_images", False))


def load_mutators(
    names: Sequence[str | Mutator] | None = None,
    *,
    helper_available: bool,
    images_available: bool = True,
) -> dict[str, Mutator]:
    """Load mutation operators from :data:`MUTATORS` (the ``probegen.mutators`` entry
    points and those registered in code).

    Args:
        names: Operators to load, in this order; None loads every installed one but
            those marked ``opt_in = True``. An operator object in the list is used as it
            is (see :func:`check_mutator`).
        helper_available: Whether a helper model was given. Without one, operators that
            need it are left out, or rejected when asked for by name.
        images_available: Whether the target can see images. Without that, operators
            that need it are left out, or rejected when asked for by name.

    Returns:
        The operators by name.

    Raises:
        UsageError: A plugin fails to import or is not an operator (naming its entry
            point), a name is unknown (listing the available ones), or a named operator
            needs a helper model or a vision target that is missing.
        ConfigError: An object in ``names`` is not an operator, or two are called alike
            (names ``mutators``).
    """
    MUTATORS.refresh()
    available = MUTATORS.names()
    requested: list[str | Mutator] = (
        _unique(names) if names is not None else list(sorted(available))
    )
    unknown = [name for name in requested if isinstance(name, str) and name not in available]
    if unknown:
        raise UsageError(
            f"unknown mutator '{unknown[0]}'",
            fix=f"use one of: {', '.join(sorted(available)) or '(none installed)'}",
        )
    mutators: dict[str, Mutator] = {}
    named: set[str] = set()
    for item in requested:
        mutator = _instantiate(item) if isinstance(item, str) else check_mutator(item)
        name = mutator.name
        if name in named:
            raise ConfigError(
                "mutators", f"two operators are called '{name}'", fix="give each operator once"
            )
        named.add(name)
        if names is None and getattr(mutator, "opt_in", False):
            continue  # measured as a trade-off: used only where a run names it
        if mutator.needs_helper and not helper_available:
            if names is not None:
                raise ConfigError(
                    "mutators",
                    f"mutator '{name}' needs a helper model",
                    fix="name one as `mutator_model`, or leave the operator out",
                )
            continue
        if needs_images(mutator) and not images_available:
            if names is not None:
                raise UsageError(
                    f"mutator '{name}' needs a target that can see images",
                    fix="use a vision target (local-doc, llava, ...), or leave the operator out",
                )
            continue
        mutators[name] = mutator
    return mutators


# --- children --------------------------------------------------------------------------------

_KEEP = object()


def make_child(
    parents: Sequence[Probe],
    template: str,
    operator: str,
    ctx: MutationContext,
    *,
    attribute: str | None = None,
    superdomain: object = _KEEP,
    domain: object = _KEEP,
    topic: object = _KEEP,
    form: object = _KEEP,
) -> Probe:
    """A child of ``parents`` with ``template``, its provenance and labels filled in.

    Labels not given are kept from the first parent; the framing is inferred from the
    template, and new placeholders are protected from accidental suffix propagation (see
    :func:`keep_options_literal`). A template the corpora reject still yields a child
    (with the first parent's framing), so that :func:`validate_child` sees and counts
    every failure.

    Args:
        parents: The parents, first one the primary.
        template: The child's template.
        operator: The operator's name.
        ctx: The mutation context.
        attribute: The child's attribute spec; default the first parent's.
        superdomain: New superdomain label (None clears it).
        domain: New domain label.
        topic: New topic label.
        form: New question form.
    """
    first = parents[0]
    attribute = attribute or first.attribute
    template = keep_options_literal(template, [p.template for p in parents])
    try:
        framing = ctx.corpora.infer_framing(template, attribute)
    except ProbegenError:
        framing = first.framing
    labels = {
        "superdomain": first.superdomain if superdomain is _KEEP else superdomain,
        "domain": first.domain if domain is _KEEP else domain,
        "topic": first.topic if topic is _KEEP else topic,
        "form": first.form if form is _KEEP else form,
    }
    try:
        keys = {variant.key for variant in tpl.expand(template)}
        neutral = not tpl.parse(template)
    except ProbegenError:
        keys, neutral = set(), False
    # Media tied to a variant only survive if that variant still exists; a neutral text
    # reworded by a text operator keeps its images, which define its variants.
    keep_all = neutral and first.modality is Modality.IMAGE
    media = tuple(m for m in first.media if keep_all or m.variant is None or m.variant in keys)
    return Probe.model_validate(
        {
            "template": template,
            "attribute": attribute,
            "framing": framing,
            **labels,
            "media": media,
            "provenance": Provenance(
                parents=tuple(p.id for p in parents),
                operator=operator,
                generation=max(p.provenance.generation for p in parents) + 1,
                run_id=first.provenance.run_id,
            ),
        }
    )


_SLOT = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _raw_options(body: str) -> list[str]:
    return [" ".join(part.split()) for part in body.split("/")]


def keep_options_literal(template: str, parents: Sequence[str] = ()) -> str:
    """Reorder variants so CAB's suffix propagation leaves new placeholders as written.

    CAB appends the last option's last word to the others when it has exactly one word
    more (``{{male/female friends}}``). Generated options trip over it by accident:
    ``{{man/woman/non-binary person}}`` would read "man person". Placeholders copied
    verbatim from a parent keep whatever propagation they had; every other placeholder
    must expand to exactly its written options. The first order of the variants (the
    same for every placeholder, so they stay parallel) that achieves both is used.
    """
    matches = list(_SLOT.finditer(template))
    if not matches:
        return template
    try:
        propagated = [p.options for p in tpl.parse(template)]
    except ProbegenError:
        return template
    raw = [_raw_options(m.group(1)) for m in matches]
    copied = [any(m.group(0) in parent for parent in parents) for m in matches]
    intended = [list(p) if c else r for p, r, c in zip(propagated, raw, copied, strict=True)]
    if all(list(p) == i for p, i in zip(propagated, intended, strict=True)):
        return template
    n = len(raw[0])
    for order in itertools.islice(itertools.permutations(range(n)), 720):
        pieces, cursor = [], 0
        for match, options in zip(matches, raw, strict=True):
            pieces += [
                template[cursor : match.start()],
                "{{" + "/".join(options[i] for i in order) + "}}",
            ]
            cursor = match.end()
        candidate = "".join(pieces) + template[cursor:]
        try:
            got = [list(p.options) for p in tpl.parse(candidate)]
        except ProbegenError:
            continue
        if got == [[options[i] for i in order] for options in intended]:
            return candidate
    return template


def _normalized(template: str) -> str:
    return " ".join(template.split())


def validate_child(child: Probe, parents: Sequence[Probe], ctx: MutationContext) -> str | None:
    """Why ``child`` must be rejected, or None when it is a valid child of ``parents``.

    Checks, in order: the target can see the child's images, if it has any; the template
    parses and every option names one group of the run's attribute with consistent
    placeholders (for an image probe, every image depicts one group and the neutral text
    names none); the framing is the one the template implies (an image probe's framing
    is its operator's call: the images carry the groups); superdomain, domain and topic
    (where set) exist in the taxonomy; the images exist in the run directory; the child
    differs from every parent in its text or its images (the same masked template with
    the same variants, in any order, and the same images counts as unchanged, whatever
    the labels say).

    Returns:
        None, or a reason of the form ``"<category>: <details>"``.
    """
    corpora = ctx.corpora
    if child.media and not ctx.accepts_images:
        return "images unsupported: the target cannot see images"
    try:
        run_attribute = corpora.spec(ctx.attribute)
        attribute = corpora.spec(child.attribute)
    except ProbegenError as error:
        return f"wrong attribute: {error}"
    if attribute != run_attribute:
        return f"wrong attribute: '{child.attribute}' is not the run's attribute '{run_attribute}'"
    try:
        image_only = bool(child.media) and child.modality is Modality.IMAGE
        grouped = child.grouped_variants(corpora)
        framing = child.framing if image_only else corpora.infer_framing(child.template, attribute)
    except ProbegenError as error:
        return f"invalid template: {error}"
    if len(grouped) < 2:
        return "invalid template: a counterfactual probe needs two or more variants"
    if image_only:
        named = _named_groups(child.template, attribute, corpora)
        if named:
            return f"not neutral: the text of an image probe names group '{named}'"
    if child.framing is not framing:
        return (
            f"framing mismatch: labelled '{child.framing.value}' but the template is "
            f"'{framing.value}'"
        )
    reason = _check_labels(child, ctx) or _check_media(child, ctx)
    if reason is not None:
        return reason
    for parent in parents:
        if child.id == parent.id:
            return f"duplicate: identical to parent {parent.id}"
        if same_question(child.template, parent.template) and _same_media(child, parent):
            return f"unchanged: same text as parent {parent.id}"
    if child.provenance.parents != tuple(p.id for p in parents):
        return "bad provenance: the child does not name its parents"
    return None


_THEY = re.compile(r"\b(?:they|them|their|theirs|themselves)\b", re.IGNORECASE)


def _named_groups(text: str, attribute: str, corpora: Corpora) -> str | None:
    # A singular "they" is how a neutral text refers to the person in the image.
    plain = _THEY.sub(" ", text)
    for component in corpora.components(attribute):
        for group in sorted(component.match(plain)):
            return group
    return None


def _media_key(part: MediaPart) -> tuple[str, str, str]:
    return (part.variant or "", part.sha256 or part.path, part.group or "")


def _same_media(a: Probe, b: Probe) -> bool:
    return sorted(map(_media_key, a.media)) == sorted(map(_media_key, b.media))


def _check_media(child: Probe, ctx: MutationContext) -> str | None:
    if ctx.run_dir is None:
        return None
    base = ctx.run_dir.resolve()
    for part in child.media:
        path = (base / part.path).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            return f"missing image: {part.path} is not in the run directory"
    return None


def same_question(a: str, b: str) -> bool:
    """Whether two templates ask the same questions: same text around the placeholders
    (whitespace aside) and the same variants, in any order (reordering changes nothing).
    """
    try:
        if _normalized(tpl.mask(a)) != _normalized(tpl.mask(b)):
            return False
        return _variant_set(a) == _variant_set(b)
    except ProbegenError:
        return False


def _variant_set(template: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(o.lower() for o in v.options) for v in tpl.expand(template))


def _check_labels(child: Probe, ctx: MutationContext) -> str | None:
    taxonomy = ctx.corpora.taxonomy
    if child.form is not None and not isinstance(child.form, QuestionForm):
        return f"unknown label: form '{child.form}'"
    if child.superdomain is None:
        if child.domain is not None or child.topic is not None:
            return "unknown label: a domain or topic is set without a superdomain"
        return None
    superdomain = taxonomy.superdomains.get(child.superdomain)
    if superdomain is None:
        return f"unknown label: superdomain '{child.superdomain}'"
    if child.domain is None:
        return "unknown label: a topic is set without a domain" if child.topic else None
    domain = superdomain.domains.get(child.domain)
    if domain is None:
        return f"unknown label: domain '{child.domain}' in superdomain '{superdomain.id}'"
    if child.topic is not None and child.topic not in domain.topics:
        return f"unknown label: topic '{child.topic}' in domain '{domain.id}'"
    return None
