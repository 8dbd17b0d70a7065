"""Every plotly figure the app draws, built from plain results (no Gradio).

- ``base``: the shared template, the Ask tab's score chart, the Training tab's confusion matrix and loss curve;
- ``batch``: the Batch tab's traffic, confidence, cost and calibration charts, and Selection testing's confusion matrix;
- ``compare``: the Compare tab's points per dimension and score against cost;
- ``traffic``: the Traffic tab's requests, spend against the cap, latency and fallbacks over days.
"""
