"""Training data from the world: ``collect`` (every chosen model answers every prompt, within a
budget: ``python -m training.collection.collect``) and ``simulate`` (the learning loop's simulated
world). Imports ``routing`` and ``training.pipeline``.
"""
