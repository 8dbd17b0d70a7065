"""Request-path safety: what every endpoint does to hostile input before and after the router.

- ``validation``: every API parameter checked (type, range, pool ids, uploads only);
- ``access``: who may spend the owner's key (the paid-access rule) and each caller's daily calls;
- ``redact``: secrets (the provider keys, the gateway keys) removed from every text and log record;
- ``untrusted``: provider and pool text escaped before Markdown renders it;
- ``csv_safe``: spreadsheet formulas neutralised in every CSV a visitor downloads.

Imports only the standard library, ``routing.settings`` and ``routing.errors`` (and ``routing.learning.outcome_log``
for private files): everything else may import these.
"""
