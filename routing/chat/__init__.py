"""Conversations: a chat routed as a whole and kept on one model (``turns``, the Ask tab's logic)
and the conversation text the router reads (``conversation``, shared with the gateway).
Imports the core and ``routing.safety``.
"""
