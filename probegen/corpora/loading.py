"""Reading a whole corpora directory: the taxonomy, the seeds, and everything together."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from probegen.corpora.attribute_files import build_attribute, read_attribute
from probegen.corpora.corpus import Corpora
from probegen.corpora.images import IMAGES_DIR, read_image_sets
from probegen.corpora.names import read_names
from probegen.corpora.schema import Domain, Seed, Superdomain, Taxonomy
from probegen.corpora.sources import (
    SNAKE_ID,
    Text,
    YamlFile,
    display,
    read_text,
    schema_error,
)
from probegen.errors import CorpusError, ProbegenError
from probegen.probe import Framing, QuestionForm

__all__ = [
    "ATTRIBUTES_DIR",
    "NAMES_FILE",
    "SEEDS_FILE",
    "TAXONOMY_FILE",
    "read_corpora",
    "read_seeds",
]

ATTRIBUTES_DIR = "attributes"
NAMES_FILE = "names.csv"
TAXONOMY_FILE = "taxonomy.yaml"
SEEDS_FILE = "seeds.jsonl"


# --- taxonomy.yaml ---------------------------------------------------------------------------


class _DomainFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    label: Text
    topics: list[Text]


class _SuperdomainFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    label: Text
    domains: dict[str, _DomainFile]


class _TaxonomyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    superdomains: dict[str, _SuperdomainFile]


def _read_taxonomy(path: Path) -> Taxonomy:
    doc = YamlFile(path)
    if not isinstance(doc.data, dict):
        raise doc.error(
            (),
            "the file must be a mapping with a 'superdomains' key",
            "start the file with 'superdomains:'",
        )
    try:
        spec = _TaxonomyFile.model_validate(doc.data)
    except ValidationError as error:
        raise schema_error(error, _TaxonomyFile, doc) from None
    domain_home: dict[str, str] = {}
    superdomains: dict[str, Superdomain] = {}
    for superdomain_id, superdomain in spec.superdomains.items():
        loc: tuple[object, ...] = ("superdomains", superdomain_id)
        check_snake(doc, loc, superdomain_id)
        domains: dict[str, Domain] = {}
        for domain_id, domain in superdomain.domains.items():
            check_snake(doc, (*loc, "domains", domain_id), domain_id)
            if domain_id in domain_home:
                raise doc.error(
                    (*loc, "domains", domain_id),
                    f"domain id '{domain_id}' is also used in superdomain "
                    f"'{domain_home[domain_id]}'",
                    "domain ids must be unique across the taxonomy; rename one",
                )
            domain_home[domain_id] = superdomain_id
            if not domain.topics:
                raise doc.error(
                    (*loc, "domains", domain_id, "topics"), "is empty", "list at least one topic"
                )
            seen: set[str] = set()
            for index, topic in enumerate(domain.topics):
                if topic.lower() in seen:
                    raise doc.error(
                        (*loc, "domains", domain_id, "topics", index),
                        f"topic '{topic}' is listed twice",
                        "remove the duplicate",
                    )
                seen.add(topic.lower())
            domains[domain_id] = Domain(
                id=domain_id, label=domain.label, topics=tuple(domain.topics)
            )
        superdomains[superdomain_id] = Superdomain(
            id=superdomain_id, label=superdomain.label, domains=domains
        )
    return Taxonomy(superdomains=superdomains)


def check_snake(doc: YamlFile, loc: tuple[object, ...], value: str) -> None:
    if not SNAKE_ID.match(value):
        raise doc.error(
            loc,
            f"'{value}' is not a snake_case id",
            "use lowercase letters, digits and '_', e.g. college_admissions",
        )


# --- seeds.jsonl -----------------------------------------------------------------------------


class _SeedLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: Text
    attribute: Text
    expl_impl: Framing
    superdomain: Text
    domain: Text
    topic: Text
    form: QuestionForm


def read_seeds(path: Path, corpora: Corpora) -> list[Seed]:
    """Read and validate a seeds file (``seeds.jsonl`` format) against ``corpora``.

    Used for the shipped seeds and for an evolve run's ``seeds_file``.
    """
    file = display(path)
    seeds: list[Seed] = []
    first_line: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{file}:{number}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise CorpusError(
                f"{where}: invalid JSON: {error.msg} (column {error.colno})",
                fix="write one JSON object per line",
            ) from None
        if not isinstance(data, dict):
            raise CorpusError(f"{where}: not a JSON object", fix="write one JSON object per line")
        try:
            line = _SeedLine.model_validate(data)
        except ValidationError as error:
            raise schema_error(error, _SeedLine, where) from None
        seed = _check_seed(where, number, line, corpora)
        key = (" ".join(seed.template.split()).lower(), seed.attribute)
        if key in first_line:
            raise CorpusError(
                f"{where}: the same seed is already on line {first_line[key]}",
                fix="remove the duplicate",
            )
        first_line[key] = number
        seeds.append(seed)
    return seeds


def _check_seed(where: str, number: int, line: _SeedLine, corpora: Corpora) -> Seed:
    try:
        attribute = corpora.spec(line.attribute)
        domain = corpora.taxonomy.domain(line.superdomain, line.domain)
        framing = corpora.infer_framing(line.template, attribute)
    except ProbegenError as error:
        raise CorpusError(f"{where}: {error.message}", fix=error.fix) from None
    if line.topic not in domain.topics:
        raise CorpusError(
            f"{where}: topic '{line.topic}' is not listed under domain '{domain.id}'",
            fix=f"use one of: {'; '.join(domain.topics)} (or add it to taxonomy.yaml)",
        )
    if framing is not line.expl_impl:
        how = (
            "names or proxies"
            if framing is Framing.IMPLICIT
            else "surface forms (or pronouns alone)"
        )
        raise CorpusError(
            f"{where}: expl_impl is '{line.expl_impl.value}' but the template names its "
            f"groups by {how}",
            fix=f"set expl_impl to '{framing.value}', or reword the options",
        )
    superdomain = corpora.taxonomy.superdomain(line.superdomain).id
    return Seed(
        template=line.template,
        attribute=attribute,
        expl_impl=line.expl_impl,
        superdomain=superdomain,
        domain=domain.id,
        topic=line.topic,
        form=line.form,
        line=number,
    )


# --- the whole corpus ------------------------------------------------------------------------


def read_corpora(root: Path) -> Corpora:
    """Read and validate every corpus file under ``root``.

    ``attributes/*.yaml`` and ``taxonomy.yaml`` are required; ``names.csv``,
    ``seeds.jsonl`` and image sets (``images/<set>/manifest.yaml``) are optional.

    Raises:
        CorpusError: On the first problem found, as one line naming file, line and fix.
    """
    if not root.is_dir():
        raise CorpusError(
            f"corpora directory '{display(root)}' does not exist",
            fix="point the corpora directory (or $PROBEGEN_CORPORA) at a corpora "
            "directory (attributes/, taxonomy.yaml, names.csv, seeds.jsonl)",
        )
    files = sorted((root / ATTRIBUTES_DIR).glob("*.yaml"))
    if not files:
        raise CorpusError(
            f"{display(root / ATTRIBUTES_DIR)}: no attribute files (*.yaml)",
            fix="add one YAML file per attribute, e.g. attributes/gender.yaml",
        )
    specs = {spec.id: spec for _, spec in (read_attribute(path) for path in files)}
    names_path = root / NAMES_FILE
    names = read_names(names_path, specs) if names_path.exists() else {}
    attributes = {
        attr_id: build_attribute(spec, names.get(attr_id, {})) for attr_id, spec in specs.items()
    }
    taxonomy = _read_taxonomy(root / TAXONOMY_FILE)
    corpora = Corpora(root, attributes, taxonomy)
    seeds_path = root / SEEDS_FILE
    seeds = read_seeds(seeds_path, corpora) if seeds_path.exists() else []
    image_sets = read_image_sets(root / IMAGES_DIR, attributes)
    return Corpora(root, attributes, taxonomy, seeds, image_sets)
