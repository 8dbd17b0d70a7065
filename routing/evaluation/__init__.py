"""Scorers behind :func:`routing.evaluation.evaluator.evaluate`, one module per concern.

prompt (what the prompt asks), code (code quality), sandbox (running Python answers),
mathcheck (math accuracy), choice (multiple-choice answers), prose (structure, examples,
formatting, creativity, factual content, visual description), penalties, text (helpers).
"""
