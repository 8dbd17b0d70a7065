"""Measuring and explaining the router without spending: selection testing, the cost knob's
calibration (``python -m routing.diagnostics.calibration``) and the Status tab's table.

Imports the core and ``routing.selectors``; the UI imports these.
"""
