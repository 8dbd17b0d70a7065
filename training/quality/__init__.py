"""The evaluator's learned quality model (``model``; ``python -m training.quality`` trains it into
``quality_model/``). Imports ``routing.evaluation``.
"""
