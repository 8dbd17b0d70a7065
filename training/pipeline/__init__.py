"""label -> prepare -> train -> release gate: making a selector and promoting it only through the gate.

``python -m training.pipeline`` runs the whole of it (``run``); ``label`` (``python -m
training.pipeline.label``) labels prompts or exports outcome tables, ``prepare`` splits them,
``train`` fits the selector (``strategies`` says which) and gates it, ``release`` promotes or rolls
back, ``feedback`` turns the outcome log's ratings into weighted training rows (each rater capped),
``fast_path`` checks the int8 path, ``add_model`` onboards a new pool model.
Imports ``routing`` and ``training.benchmark`` (metrics, heads); the app imports it only from the Training tab.
"""
