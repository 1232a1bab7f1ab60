"""Layering: only the command line (``probegen/cli/``) speaks in ``--flags``.

The library names its config fields and arguments (``base_url``, ``images``); the CLI
says each as its flag when it prints a library error (``probegen.cli.common``). A flag
written into a library module would be wrong for every caller that is not the CLI, and
goes stale when the CLI renames it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probegen.cli.common import flags_for_fields
from probegen.errors import ConfigError, ModelUnavailableError, UsageError

PACKAGE = Path(__file__).resolve().parent.parent / "probegen"
CLI = PACKAGE / "cli"
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")

# Other programs' command lines, which a user types as written: not probegen's flags.
OTHER_PROGRAMS = {
    ("release/inspect_export.py", "inspect eval inspect/task.py --model"),
    ("models/openai_backend.py", "llama.cpp's servers (``--logits_all``)"),
    ("models/presets.toml", "`llama-server -m M --jinja`"),
}


def library_files() -> list[Path]:
    # Code, presets and page templates; not CSS, whose custom properties are `--name`.
    files = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.toml"), *PACKAGE.rglob("*.html")]
    return sorted(path for path in files if CLI not in path.parents)


def flag_mentions(path: Path) -> list[str]:
    relative = path.relative_to(PACKAGE).as_posix()
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not FLAG.search(line):
            continue
        if any(relative == file and text in line for file, text in OTHER_PROGRAMS):
            continue
        found.append(f"probegen/{relative}:{number}: {line.strip()}")
    return found


def test_no_module_outside_the_cli_mentions_a_flag() -> None:
    files = library_files()
    assert len(files) > 50  # the scan really reads the package
    offenders = [mention for path in files for mention in flag_mentions(path)]
    assert not offenders, "flags outside probegen/cli/ (name the config field):\n" + "\n".join(
        offenders
    )


def test_the_scan_finds_a_flag_and_skips_other_programs(tmp_path: Path) -> None:
    assert FLAG.search("pass --base-url here")
    assert FLAG.search("``--k``")
    assert not FLAG.search("a -- dash")
    assert not FLAG.search("x--y")
    for file, text in OTHER_PROGRAMS:  # each exemption still matches its line
        assert text in (PACKAGE / file).read_text(encoding="utf-8"), (file, text)


def test_the_cli_says_fields_in_any_user_error_as_flags() -> None:
    with pytest.raises(UsageError) as said, flags_for_fields("ask", {"timeout_s": "--timeout"}):
        raise ConfigError("timeout_s", "must be positive", value=-1, fix="raise `timeout_s`")
    assert str(said.value) == "--timeout -1: must be positive (fix: raise --timeout)"
    # Not only ConfigError: a missing key's fix names `base_url`, and the class is kept.
    with pytest.raises(ModelUnavailableError) as kept, flags_for_fields("ask"):
        raise ModelUnavailableError("openai:m: KEY is not set", fix="pass `base_url`")
    assert str(kept.value) == "openai:m: KEY is not set (fix: pass --base-url)"


def test_the_review_package_holds_no_sql() -> None:
    """Review's queries are named methods of the store (``probegen.store.reviews``)."""
    sql = re.compile(
        r"\.(execute|select|transaction)\("
        r"|\bSELECT\b.*\bFROM\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\bDELETE FROM\b"
    )
    review = PACKAGE / "review"
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(review.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if sql.search(line)
    ]
    assert not offenders, "SQL in probegen/review/ (add a store method):\n" + "\n".join(offenders)
