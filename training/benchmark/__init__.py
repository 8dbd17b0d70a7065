"""Routing quality measured on public outcome tables: ``python -m training.benchmark``.

``run`` (the benchmark), ``metrics`` (AIQ, quality at cost, paired bootstrap), ``outcomes`` (the
outcome-table reader), ``head`` (embedding heads), ``cost_model``, ``finetuned_selector`` (the
fine-tuned router for comparison) and ``ood`` (``python -m training.benchmark.ood``: two-model
routers trained elsewhere). Imports ``routing`` and ``training.pipeline``'s strategies.
"""
