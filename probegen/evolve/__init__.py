"""The evolutionary search: configuration, the loop, a run's life and its outputs.

- :mod:`probegen.evolve.api`: ``probegen.evolve(...)`` and ``probegen.resume(...)``.
- :mod:`probegen.evolve.lifecycle`: a run from its parts to a finished row in the store.
- :mod:`probegen.evolve.config`: :class:`~probegen.evolve.config.EvolveConfig`.
- :mod:`probegen.evolve.run`: the search loop (:class:`~probegen.evolve.run.Evolution`).
- :mod:`probegen.evolve.conclude` and :mod:`probegen.evolve.outputs`: findings, files.

Nothing is imported here: ``import probegen`` imports this package first (see
``probegen/__init__.py``) and must stay light.
"""
