"""Compare-all: every pool model answers one prompt, scored by the evaluator (``run``), and the
optional LLM judge (``judge``). Imports the core, ``routing.evaluation`` and ``routing.learning.outcome_log``.
"""
