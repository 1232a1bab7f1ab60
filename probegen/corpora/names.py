"""``names.csv``: first names as implicit proxies, balanced per group and by gender."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from probegen.corpora.attribute_files import AttributeFile, group_forms
from probegen.corpora.schema import contains, tokenize
from probegen.corpora.sources import FORBIDDEN_IN_FORMS, display
from probegen.errors import CorpusError

__all__ = ["CROSS_BALANCE_COLUMN", "read_names"]

CROSS_BALANCE_COLUMN = "gender"
"""Every other column is balanced by gender within each group, so that intersections
such as gender+race have the same number of names in every cell."""


def read_names(path: Path, specs: dict[str, AttributeFile]) -> dict[str, dict[str, list[str]]]:
    """Names by attribute id and group id, validated and balanced."""
    file = display(path)
    names: dict[str, dict[str, list[str]]] = {}
    rows: list[tuple[int, str, dict[str, str]]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = [cell.strip() for cell in next(reader, [])]
        if not header or header[0] != "name":
            raise CorpusError(
                f"{file}:1: the header must start with 'name'",
                fix="write a header such as name,gender,race,religion,nationality",
            )
        columns = header[1:]
        for column in columns:
            if column not in specs:
                raise CorpusError(
                    f"{file}:1: column '{column}' is not an attribute",
                    fix=f"name columns after attribute ids: {', '.join(sorted(specs))}",
                )
        if len(set(columns)) != len(columns):
            raise CorpusError(f"{file}:1: a column appears twice", fix="list each column once")
        first_line: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise CorpusError(
                    f"{file}:{line}: {len(row)} cells, the header has {len(header)}",
                    fix="leave a cell empty rather than dropping it",
                )
            name, cells = (
                row[0].strip(),
                dict(zip(columns, (c.strip() for c in row[1:]), strict=True)),
            )
            _check_name_row(file, line, name, cells, specs, first_line)
            rows.append((line, name, cells))
    for column in columns:
        names[column] = {group_id: [] for group_id in specs[column].groups}
    for _, name, cells in rows:
        for column, group_id in cells.items():
            if group_id:
                names[column][group_id].append(name)
    _check_name_balance(file, names, rows)
    return names


def _check_name_row(
    file: str,
    line: int,
    name: str,
    cells: dict[str, str],
    specs: dict[str, AttributeFile],
    first_line: dict[str, int],
) -> None:
    if not name or not tokenize(name) or any(c in name for c in FORBIDDEN_IN_FORMS):
        raise CorpusError(
            f"{file}:{line}: name '{name}' is empty or not a word",
            fix="write a first name in the 'name' column",
        )
    key = " ".join(tokenize(name))
    if key in first_line:
        raise CorpusError(
            f"{file}:{line}: name '{name}' is already on line {first_line[key]}",
            fix="list each name once, with every attribute it signals",
        )
    first_line[key] = line
    if not any(cells.values()):
        raise CorpusError(
            f"{file}:{line}: name '{name}' signals no group",
            fix="fill in at least one attribute column, or remove the row",
        )
    for column, group_id in cells.items():
        if not group_id:
            continue
        spec = specs[column]
        if group_id not in spec.groups:
            raise CorpusError(
                f"{file}:{line}: {column} '{group_id}' is not a group of attribute '{column}'",
                fix=f"use one of: {', '.join(spec.groups)} (or leave the cell empty)",
            )
        for other_id, _, _, form in group_forms(spec):
            if other_id != group_id and contains(tokenize(name), tokenize(form)):
                raise CorpusError(
                    f"{file}:{line}: name '{name}' contains '{form}', which names "
                    f"{column} group '{other_id}'",
                    fix="drop the name or leave its cell empty",
                )


def _check_name_balance(
    file: str, names: dict[str, dict[str, list[str]]], rows: list[tuple[int, str, dict[str, str]]]
) -> None:
    for column, groups in names.items():
        counts = {group_id: len(listed) for group_id, listed in groups.items() if listed}
        if len(set(counts.values())) > 1:
            listing = ", ".join(f"{group} {count}" for group, count in counts.items())
            most = max(counts.values())
            adds = ", ".join(f"{most - n} to '{g}'" for g, n in counts.items() if n < most)
            raise CorpusError(
                f"{file}: column '{column}' is unbalanced ({listing})",
                fix=f"add names ({adds}): every group that has names needs the same number",
            )
    if CROSS_BALANCE_COLUMN not in names:
        return
    genders = [g for g, listed in names[CROSS_BALANCE_COLUMN].items() if listed]
    for column in names:
        if column == CROSS_BALANCE_COLUMN:
            continue
        cells = Counter(
            (cells[column], cells[CROSS_BALANCE_COLUMN])
            for _, _, cells in rows
            if cells[column] and cells[CROSS_BALANCE_COLUMN]
        )
        for group_id in {group for group, _ in cells}:
            counts = {gender: cells[(group_id, gender)] for gender in genders}
            if len(set(counts.values())) > 1:
                listing = ", ".join(f"{gender} {count}" for gender, count in counts.items())
                most = max(counts.values())
                adds = ", ".join(f"{most - n} {g}" for g, n in counts.items() if n < most)
                raise CorpusError(
                    f"{file}: column '{column}': group '{group_id}' is unbalanced by "
                    f"{CROSS_BALANCE_COLUMN} ({listing})",
                    fix=f"add names with {column} '{group_id}' ({adds}), so "
                    f"{CROSS_BALANCE_COLUMN}+{column} probes have as many names in every cell",
                )
