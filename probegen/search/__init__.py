"""Quality-diversity search: archives of elite probes, emitters, a surrogate, a scheduler.

The search follows pyribs' ask/tell shape and never calls the target itself: archives keep
and sample elites (:mod:`probegen.search.archive`); emitters make children with a purpose
(:mod:`probegen.search.emitters`, and the helper-model one in
:mod:`probegen.search.llm_emitter`); a bandit paid per query decides which emitter gets
the next child (:mod:`probegen.search.bandit`); a surrogate model of fitness screens an
over-generated pool (:mod:`probegen.search.surrogate`); the scheduler ties them together
(:mod:`probegen.search.scheduler`).
"""

from probegen.search.archive import (
    AXES,
    DEFAULT_AXES,
    UNKNOWN,
    AddStatus,
    Archive,
    ArchiveStats,
    DescriptorSpace,
    Elite,
    MapElitesArchive,
    TopKArchive,
    compute_stats,
    sample_weighted,
    selection_weights,
)
from probegen.search.bandit import OperatorBandit
from probegen.search.emitters import EMITTERS, Emitter, Proposal
from probegen.search.surrogate import FitnessSurrogate

__all__ = [
    "AXES",
    "DEFAULT_AXES",
    "EMITTERS",
    "UNKNOWN",
    "AddStatus",
    "Archive",
    "ArchiveStats",
    "DescriptorSpace",
    "Elite",
    "Emitter",
    "FitnessSurrogate",
    "MapElitesArchive",
    "OperatorBandit",
    "Proposal",
    "TopKArchive",
    "compute_stats",
    "sample_weighted",
    "selection_weights",
]
