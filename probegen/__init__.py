"""probegen: an adaptive generator of counterfactual bias probes.

The public API is small; everything else lives in clearly named modules:

- :mod:`probegen.template` — the CAB ``{{a/b}}`` placeholder format.
- :mod:`probegen.probe` — the :class:`Probe` and its provenance.
- :mod:`probegen.corpora` — attributes, names, topic taxonomy and seed questions.
- :mod:`probegen.models` — the :class:`ChatModel` protocol and its backends.
- :mod:`probegen.store` — the SQLite run store and response cache.
- :mod:`probegen.runner` — sends probe variants to models and records the outcomes.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("probegen")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from probegen.errors import ProbegenError, TemplateError
from probegen.probe import Framing, MediaPart, Probe, Provenance, QuestionForm
from probegen.template import Variant, expand

__all__ = [
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
