"""The README's promises that can drift: the CI command and the commands it documents."""

from __future__ import annotations

import re
import subprocess
import sys
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
        "AskResult",
        "BuildResult",
        "ConfigError",
        "EvalResult",
        "EvolveConfig",
        "EvolveResult",
        "Framing",
        "FunctionModel",
        "MediaPart",
        "Probe",
        "ProbegenError",
        "Provenance",
        "QuestionForm",
        "RunInterrupted",
        "TemplateError",
        "Variant",
        "__version__",
        "ask",
        "build_release",
        "evaluate",
        "evolve",
        "expand",
        "get_model",
        "resume",
    ]
    for name in probegen.__all__:  # every name resolves (the search's ones on first use)
        assert getattr(probegen, name) is not None


def test_import_probegen_stays_light() -> None:
    """``import probegen`` must not pull in the search (numpy, the embedder, backends):
    its functions import them on first use."""
    code = "import sys, probegen; print(sorted(m for m in sys.modules if m.startswith('numpy')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_probegen_evolve_is_the_function_after_its_subpackage_is_imported() -> None:
    from probegen.evolve.config import EvolveConfig  # loads probegen.evolve's modules

    assert callable(probegen.evolve)
    assert probegen.EvolveConfig is EvolveConfig
