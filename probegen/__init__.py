"""probegen: an adaptive generator of counterfactual bias probes.

The public API is small, and the CLI is a thin layer over it: :func:`evolve` and
:func:`resume` run the search (a whole, stored run, as ``probegen evolve`` makes; see
:mod:`probegen.evolve.api`), :func:`evaluate` scores a release on models
(:mod:`probegen.evaluation.api`), :func:`ask` puts one question to a model
(:mod:`probegen.asking`), :func:`build_release` publishes a release from reviewed runs
(:mod:`probegen.release.api`), and :func:`get_model` makes a model from a spec, an object
or an async function. Everything else lives in clearly named modules:

- :mod:`probegen.template` — the CAB ``{{a/b}}`` placeholder format.
- :mod:`probegen.probe` — the :class:`Probe` and its provenance.
- :mod:`probegen.corpora` — attributes, names, topic taxonomy and seed questions.
- :mod:`probegen.models` — the :class:`ChatModel` protocol and its backends.
- :mod:`probegen.store` — the SQLite run store and response cache.
- :mod:`probegen.elite` — the typed, versioned elite record of ``elites.jsonl``.
- :mod:`probegen.cab` — CAB's record format (fields, checks, seeds from a ``cab.json``).
- :mod:`probegen.runner` — sends probe variants to models and records the outcomes.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("probegen")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from importlib import import_module
from typing import TYPE_CHECKING, Any

from probegen.errors import ConfigError, ProbegenError, RunInterrupted, TemplateError
from probegen.probe import Framing, MediaPart, Probe, Provenance, QuestionForm
from probegen.template import Variant, expand

if TYPE_CHECKING:
    from probegen.asking import AskResult, ask
    from probegen.evaluation.api import EvalResult, evaluate
    from probegen.evolve.api import EvolveResult, evolve, resume
    from probegen.evolve.config import EvolveConfig
    from probegen.models.function import FunctionModel
    from probegen.models.registry import get_model
    from probegen.release.api import BuildResult, build_release

__all__ = [
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

# The search pulls in numpy, the embedder and the model registry: imported on first use,
# so `import probegen` stays light.
_LAZY = {
    "AskResult": "probegen.asking",
    "BuildResult": "probegen.release.api",
    "EvalResult": "probegen.evaluation.api",
    "EvolveConfig": "probegen.evolve.config",
    "EvolveResult": "probegen.evolve.api",
    "FunctionModel": "probegen.models.function",
    "ask": "probegen.asking",
    "build_release": "probegen.release.api",
    "evaluate": "probegen.evaluation.api",
    "evolve": "probegen.evolve.api",
    "get_model": "probegen.models.registry",
    "resume": "probegen.evolve.api",
}

# `probegen.evolve` is the function; the subpackage of the same name is loaded here, and
# its attribute removed, so that the function (loaded by __getattr__) takes the name. The
# import system binds a subpackage to its parent only when it first loads it, so no later
# `import probegen.evolve.X` rebinds it. Use `from probegen.evolve.X import ...` for the
# subpackage's modules.
import_module("probegen.evolve")
del globals()["evolve"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'probegen' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
