"""Reading corpus files, and saying exactly where a problem is.

Every problem becomes one :class:`~probegen.errors.CorpusError` line of the form
``<file>:<line>: <key.path>: <problem> (fix: <fix>)``. YAML line numbers come from the
composed node tree, so a message points at the offending key even for schema errors
that pydantic reports by key path only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml  # type: ignore[import-untyped, unused-ignore]  # types-PyYAML is optional
from pydantic import BaseModel, StringConstraints, ValidationError

from probegen.errors import CorpusError

__all__ = [
    "FORBIDDEN_IN_FORMS",
    "GROUP_ID",
    "SNAKE_ID",
    "Text",
    "YamlFile",
    "display",
    "key_path",
    "read_text",
    "schema_error",
]

SNAKE_ID = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
GROUP_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
FORBIDDEN_IN_FORMS = ("/", "{", "}")

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def display(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def key_path(loc: Sequence[object]) -> str:
    """A key path as written in messages: ``groups.woman.surface_forms[2]``."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


class YamlFile:
    """A parsed YAML file that can map a key path back to its line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = display(path)
        text = read_text(path)
        self.node: yaml.Node | None
        try:
            self.node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data: Any = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise CorpusError(
                f"{self.file}{line}: invalid YAML: {problem}",
                fix="check the indentation, colons and quoting near that line",
            ) from None
        if self.node is None or self.data is None:
            raise CorpusError(f"{self.file}: the file is empty", fix="fill it in or delete it")
        _check_duplicate_keys(self, self.node, ())

    def line(self, loc: Sequence[object]) -> int | None:
        """The 1-based line of the deepest node on ``loc`` that exists."""
        node: yaml.Node | None = self.node
        line: int | None = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                entry = next((kv for kv in node.value if kv[0].value == str(part)), None)
                if entry is None:
                    break
                line = entry[0].start_mark.line + 1
                node = entry[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def error(self, loc: Sequence[object], problem: str, fix: str) -> CorpusError:
        line = self.line(loc)
        where = f"{self.file}:{line}" if line else self.file
        key = key_path(loc)
        return CorpusError(f"{where}: {key + ': ' if key else ''}{problem}", fix=fix)


def _check_duplicate_keys(doc: YamlFile, node: yaml.Node, loc: tuple[object, ...]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                line = key.start_mark.line + 1
                raise CorpusError(
                    f"{doc.file}:{line}: {key_path((*loc, key.value))}: duplicate key",
                    fix="each key may appear once in a mapping; merge or rename the entries",
                )
            seen.add(key.value)
            _check_duplicate_keys(doc, value, (*loc, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(doc, item, (*loc, index))


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"{display(path)}: not UTF-8 text", fix="save it as UTF-8") from None
    except OSError as error:
        raise CorpusError(
            f"{display(path)}: cannot be read ({error.strerror})",
            fix="check that the file exists and is readable",
        ) from None


_FIXES = {
    "string_type": "write a quoted string",
    "string_too_short": "write a non-empty value",
    "list_type": "write a list, e.g. [a, b]",
    "tuple_type": "write a list, e.g. [a, b]",
    "dict_type": "write a mapping of key: value lines",
    "model_type": "write a mapping of key: value lines",
    "enum": "use one of the values listed",
}


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) is Union or type(annotation).__name__ == "UnionType":
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0] if args else annotation
    if get_origin(annotation) is Annotated:
        return get_args(annotation)[0]
    return annotation


def _fields_at(model: type[BaseModel], loc: Sequence[object]) -> list[str]:
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        else:
            args = get_args(current)
            current = args[-1] if get_origin(current) is dict else (args[0] if args else None)
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def schema_error(
    error: ValidationError, model: type[BaseModel], where: YamlFile | str, offset: int = 0
) -> CorpusError:
    """Turn the first pydantic error into one line; ``where`` is a YAML doc or 'file:line'."""
    first = error.errors()[0]
    loc = list(first["loc"])[offset:]
    kind = first["type"]
    if kind == "missing":
        problem, fix = f"missing required field '{loc[-1]}'", f"add '{loc[-1]}'"
        place = loc[:-1]
    elif kind == "extra_forbidden":
        allowed = ", ".join(_fields_at(model, loc[:-1]))
        problem = f"unknown field '{loc[-1]}'"
        fix = f"remove it or correct its spelling (allowed: {allowed})"
        place = loc
    else:
        problem = first["msg"][0].lower() + first["msg"][1:]
        fix = _FIXES.get(kind, "correct the value")
        place = loc
    more = error.error_count() - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    if isinstance(where, YamlFile):
        if kind == "missing":
            line = where.line(place)
            key = key_path(place)
            prefix = f"{where.file}:{line}" if line else where.file
            return CorpusError(f"{prefix}: {key + ': ' if key else ''}{problem}", fix=fix)
        return where.error(place, problem, fix)
    key = key_path(place)
    return CorpusError(f"{where}: {key + ': ' if key else ''}{problem}", fix=fix)
