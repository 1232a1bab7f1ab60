"""Pictures for multimodal probes: documents drawn about a person, and image seeds.

- :mod:`probegen.imaging.documents`: the deterministic renderer (résumés, ID badges,
  application forms, typed notes), run with ``python -m`` to regenerate the shipped set
  (:mod:`probegen.cli.documents`);
- :mod:`probegen.imaging.content`: what the documents say and what is asked about them
  (``corpora/images/documents.yaml`` and ``prompts.yaml``), validated on load;
- :mod:`probegen.imaging.sets`: the shipped document set, built from the scenes;
- :mod:`probegen.imaging.seeds`: seed probes from the image sets, for vision targets.

The image sets themselves (manifests, validation, pairs) are corpus data:
:mod:`probegen.corpora.images`.
"""
