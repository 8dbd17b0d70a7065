"""The selector's training pipeline: label -> prepare -> train, and the benchmark on outcome data.

Each step is a command (``python -m training.label|prepare|train|pipeline|benchmark``) and a
function the Training tab calls (:func:`training.pipeline.run_pipeline`).
"""
