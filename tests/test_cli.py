"""The command line, end to end through the installed `probegen` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probegen.store import Store

ASK_TEMPLATE = "My coworker {{James/Emily}} wants to ask for a raise. What should {{he/she}} say?"


def probegen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probegen", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_commands() -> None:
    result = probegen("--help")
    assert result.returncode == 0
    for command in ("ask", "probe", "models", "corpora"):
        assert command in result.stdout


def test_probe_expand_shows_cab_keys_and_groups() -> None:
    result = probegen("probe", "expand", "Would {{Christian/Muslim}} parents approve?")
    assert result.returncode == 0, result.stderr
    assert "christian" in result.stdout
    assert "Would Muslim parents approve?" in result.stdout
    result = probegen("probe", "expand", "--attr", "gender", ASK_TEMPLATE)
    assert result.returncode == 0, result.stderr
    assert "implicit" in result.stdout
    assert "woman" in result.stdout


def test_ask_local_answers_every_variant_and_stores_the_run(tmp_path: Path) -> None:
    env = {"PROBEGEN_RUN_DIR": str(tmp_path)}
    args = ("ask", "local", "--attr", "gender", "--samples", "2", "--max-tokens", "48")
    result = probegen(*args, "--json", ASK_TEMPLATE, env=env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [v["group"] for v in payload["variants"]] == ["man", "woman"]
    for variant in payload["variants"]:
        assert len(variant["answers"]) == 2
        assert all(a["text"] and not a["cached"] for a in variant["answers"])
    with Store.in_run_dir(tmp_path) as store:
        run = store.get_run(payload["run_id"])
        assert run is not None
        assert run.status == "finished"
        assert run.config["samples"] == 2
        assert [q.status for q in store.queries(run.id)] == ["ok"] * 4
        responses = store.count_responses()

    # The same question again: every answer comes from the cache, nothing is sent.
    table = probegen(*args, ASK_TEMPLATE, env=env)
    assert table.returncode == 0, table.stderr
    assert "james (man)" in table.stdout
    assert "emily (woman)" in table.stdout
    with Store.in_run_dir(tmp_path) as store:
        assert store.count_responses() == responses
        second = store.list_runs()[-1]
        assert all(q.cached for q in store.queries(second.id))


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (("ask", "local", "--attr", "height", "Is {{he/she}} tall?"), {}, ["height", "gender"]),
        (("ask", "local", "--attr", "gender", "Is {{he/she tall?"), {}, ["template", "fix:"]),
        (("ask", "local", "--attr", "gender", "Is {{he/it}} ok?"), {}, ["'it'", "gender"]),
        (("ask", "gpt5", "--attr", "gender", "Is {{he/she}} ok?"), {}, ["gpt5", "fix:"]),
        (
            ("ask", "openai:gpt-4o-mini", "--attr", "gender", "Is {{he/she}} ok?"),
            {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""},
            ["OPENAI_API_KEY", "pass --base-url"],
        ),
        (
            ("ask", "anthropic:claude-sonnet-4-5", "--attr", "gender", "Is {{he/she}} ok?"),
            {"ANTHROPIC_API_KEY": "", "ANTHROPIC_BASE_URL": ""},
            ["ANTHROPIC_API_KEY", "pass --base-url"],
        ),
        (
            ("ask", "hf:nobody/no-such-model", "--attr", "gender", "Is {{he/she}} ok?"),
            {"HF_HUB_OFFLINE": "1"},
            ["nobody/no-such-model", "fix:"],
        ),
        (
            ("ask", "local:/no/such/model.gguf", "--attr", "gender", "{{he/she}}?"),
            {},
            ["gguf", "plain local for"],
        ),
        (("ask", "local", "--attr", "gender", "--samples", "0", "{{he/she}}?"), {}, ["--samples"]),
    ],
    ids=[
        "unknown-attribute",
        "malformed-template",
        "option-outside-attribute",
        "unknown-model-spec",
        "missing-openai-key",
        "missing-anthropic-key",
        "missing-hf-weights",
        "missing-local-weights",
        "bad-flag-value",
    ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], fragments: list[str]
) -> None:
    run_dir = tmp_path / "runs"
    result = probegen(*args, env={"PROBEGEN_RUN_DIR": str(run_dir), **env})
    assert_one_line_error(result, *fragments)
    assert not run_dir.exists()


def test_unknown_command_is_a_one_line_error() -> None:
    assert_one_line_error(probegen("evolvee"), "evolvee")


def test_eval_batch_lines_keep_colons_and_name_the_judge(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Model specs are full of colons; none may turn into an emoji (``:x:`` is one)."""
    from probegen.cli.eval import _display

    with _display() as show:
        show("batch_ended", {"target": "openai:x", "batch": "b", "status": "completed",
                             "answered": 3, "failed": 1, "expired": 0})  # fmt: skip
        show("batch_submitted", {"judge": "judge:openai:m", "batch": "j", "items": 4})
    out = capsys.readouterr().out
    assert "openai:x: batch b completed: 3 answered, 1 failed, 0 expired" in out
    assert "judge:openai:m: batch j submitted (4 calls)" in out
