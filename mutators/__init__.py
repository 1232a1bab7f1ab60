"""Mutation operators for ``probegen evolve``, loaded as plugins.

Operators are registered through the ``probegen.mutators`` entry-point group in
``pyproject.toml``, the same way a third-party package adds its own.
"""
