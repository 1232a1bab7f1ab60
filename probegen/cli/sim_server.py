"""``python -m probegen.models.sim_server``: the planted-bias simulator as a server.

A command of its own (not a ``probegen`` sub-command): a stand-in model server for tests
and benchmarks. The server is :func:`probegen.models.sim_server.create_app`; this is its
command line::

    python -m probegen.models.sim_server --port 8765 [--regions FILE] [--latency-ms 50]

probegen reaches it through its ``openai:`` backend, e.g. ``probegen evolve --target
openai:sim --base-url http://127.0.0.1:8765/v1``. ``--regions`` takes any simulator
file: keyword regions (``corpora/simulator/planted.yaml``, the default) or graded
regions (``corpora/simulator/graded-*.yaml``). ``--latency-ms`` delays every answer, to
measure throughput against a server of known speed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from probegen.errors import ProbegenError
from probegen.models.sim_server import DEFAULT_MODEL_NAME, create_app
from probegen.models.simulator import SimulatorBackend

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the flags, load the simulator and serve it until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m probegen.models.sim_server",
        description="Serve the planted-bias simulator as an OpenAI-compatible server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument(
        "--regions",
        type=Path,
        default=None,
        help="simulator file, keyword or graded regions (default: corpora/simulator/planted.yaml)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=None, help="delay per answer (default: the file's)"
    )
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="id in /v1/models")
    args = parser.parse_args(argv)
    if args.latency_ms is not None and args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")

    import uvicorn  # only the server needs it

    try:
        sim = SimulatorBackend(args.regions)
    except ProbegenError as error:
        parser.exit(2, f"error: {error}\n")
    latency_s = sim.config.latency_s if args.latency_ms is None else args.latency_ms / 1000
    app = create_app(sim, latency_s=latency_s, model_name=args.model_name)
    print(
        f"sim server: http://{args.host}:{args.port}/v1 (model {args.model_name}, "
        f"latency {latency_s * 1000:g} ms, regions {sim.path})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
