"""Making and measuring selectors; may import ``routing``, which never imports it on a request path.

- ``pipeline/``: label -> prepare -> train -> release gate (``python -m training.pipeline``; each step
  also alone, e.g. ``python -m training.pipeline.train``), and the function the Training tab calls
  (:func:`training.pipeline.run.run_pipeline`);
- ``benchmark/``: routing quality on public outcome tables (``python -m training.benchmark``);
- ``collection/``: outcome tables from the pool's answers, and the learning loop's simulated world;
- ``quality/``: the evaluator's learned quality model (``python -m training.quality``);
- ``text``, ``files``, ``embeddings``, ``tiny``: helpers the others share.
"""
