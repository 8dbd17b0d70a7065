"""Fitting the evidence prior (:mod:`routing.selectors.prior`) from public data.

- ``data``: the public sets it learns from (labelled prompts for the topic classifier; outcome
  tables, split by prompt, and their models' ratings);
- ``fit``: the topic classifier, the difficulty regression and the link's slope, and the folder
  the app loads (``python -m training.prior``).
"""
