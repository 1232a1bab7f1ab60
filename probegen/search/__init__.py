"""Quality-diversity search: archives of elite probes and adaptive operator selection.

The search follows pyribs' ask/tell shape and never calls a model itself: archives keep
and sample elites (:mod:`probegen.search.archive`), and a bandit decides which mutation
operator gets the next child (:mod:`probegen.search.bandit`).
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

__all__ = [
    "AXES",
    "DEFAULT_AXES",
    "UNKNOWN",
    "AddStatus",
    "Archive",
    "ArchiveStats",
    "DescriptorSpace",
    "Elite",
    "MapElitesArchive",
    "OperatorBandit",
    "TopKArchive",
    "compute_stats",
    "sample_weighted",
    "selection_weights",
]
