"""Mutation operators for ``probegen evolve``, loaded as plugins.

Operators are registered through the ``probegen.mutators`` entry-point group in
``pyproject.toml``, the same way a third-party package adds its own (see
:mod:`probegen.mutation` for the protocol). One module per family:

- ``reframe``: explicit <-> implicit (group words <-> first names or proxy phrases);
- ``groupset``: add or drop a group, or cross with a second attribute of the run;
- ``topic_shift``: retell the persona in a scenario from another domain;
- ``compose``: a new question from a situation, an entity or topic, the persona and a
  closing (open, or a yes/no decision);
- ``persona``: generic <-> specific personas;
- ``decision``: end in a yes/no decision or a choice against one fixed other candidate;
- ``psychometric``: disguise, deception and teaching framings;
- ``refusal_trigger``: framings that may make a model refuse for some groups only;
- ``crossover``: splice or transplant between two parents of the same attribute;
- ``llm_rewrite``: a helper model's less typical rewrites (verbalized sampling).

Shared machinery lives in the underscore modules: ``_framings`` (the wording in
``corpora/framings.yaml``, validated on load), ``_groups`` (what placeholders say about
each variant, and how to say it another way), ``_persona``, ``_text`` and ``_wording``
(template surgery), ``_wrap`` (framing a whole question).
"""
