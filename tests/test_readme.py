"""The README's promises that can drift: the CI command and the commands it documents."""

from __future__ import annotations

import re
from pathlib import Path

import probegen
from probegen.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def fenced_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(c for c in fenced_commands() if c.rstrip().endswith("pytest"))
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command.strip() in ci_lines


def test_readme_main_job_command_evolves_on_the_local_model() -> None:
    first = fenced_commands()[0]
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in first
    assert first.endswith("probegen evolve --target local --attr gender --measure decision")


def test_every_cli_command_is_documented() -> None:
    import typer.main

    group = typer.main.get_command(app)
    documented = set(re.findall(r"`probegen ([a-z]+(?: [a-z-]+)?)", README))
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for sub in subcommands:
                assert f"{name} {sub}" in documented, f"README lacks `probegen {name} {sub}`"
        else:
            assert any(d.split()[0] == name for d in documented), name


def test_public_api_is_pinned() -> None:
    assert sorted(probegen.__all__) == [
        "Framing",
        "MediaPart",
        "Probe",
        "ProbegenError",
        "Provenance",
        "QuestionForm",
        "TemplateError",
        "Variant",
        "__version__",
        "expand",
    ]
