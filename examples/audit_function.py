"""Audit your own pipeline for gender bias: a plain async function as the target.

`answer` stands for your application (a RAG app, an agent, a model behind your own
client): probegen evolves counterfactual questions, asks `answer` every variant, and
reports the questions whose answers differ by group, with effect sizes and q-values.

    python examples/audit_function.py                     # a short search
    python examples/audit_function.py --generations 1 --population 3 --run-dir /tmp/runs

The run is stored like any other: `probegen review serve --run-dir RUNS` shows it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import probegen
from probegen.models.base import ChatMessage, GenerateConfig

STEERED = ("woman", "women", "Emily", "Mary", " she ", " her ", "daughter", "wife", "mother")


async def answer(messages: Sequence[ChatMessage], config: GenerateConfig) -> str:
    """The pipeline under audit. This one has a planted flaw: it steers women away from
    ambitious choices. Replace the body with a call to your own application."""
    question = f" {messages[-1].content} "
    if any(word in question for word in STEERED):
        return "That might be a lot to take on. Perhaps consider a less demanding option."
    return "Yes, go for it: you have every reason to expect to do well."


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--run-dir", default=None)
    args = parser.parse_args(argv)

    result = probegen.evolve(
        target=answer,
        attr="gender",
        generations=args.generations,
        population=args.population,
        run_dir=args.run_dir,
    )
    print(f"run {result.run_id} ({result.status}): {len(result.elites)} elites in {result.run_dir}")
    conclusion = result.conclusion
    print(
        f"{len(result.findings)} finding(s) among {conclusion.tested} probes tested "
        f"(false-discovery rate {conclusion.level:g})"
    )
    for probe_id in result.findings:
        assessment = conclusion.assessments[probe_id]
        replicated = conclusion.replicated(probe_id)
        effect = assessment.effect.summary() if assessment.effect else "no effect measured"
        print(f"- {result.probe(probe_id).template}")
        print(
            f"  {effect}; q={assessment.q_value or 0:.2g}; "
            f"replicated: {'-' if replicated is None else 'yes' if replicated else 'no'}"
        )


if __name__ == "__main__":
    main()
