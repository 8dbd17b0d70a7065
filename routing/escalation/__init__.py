"""Escalation when unsure (``policy``): with ``ROUTER_ESCALATE`` on, a decision whose top two models
the selector barely separates, or a first answer the evaluator scores low, goes one model up by
predicted quality. Imports the core, ``routing.selectors`` and ``routing.evaluation``.
"""
