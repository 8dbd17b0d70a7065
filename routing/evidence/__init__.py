"""Public evidence about the pool's models: published ratings and list prices, kept as data.

``ratings`` reads a public per-category rating table (LMArena's text arena, ``variant,category,model,
rating,ci95_low,ci95_high``) and a list-price table, gives the stated default for an unrated model
(the file's median per category, used when a pool has no rated model) and matches model names to the table's names by fixed, tested
rules (never a guess). ``refresh`` writes each pool model's ``evidence`` block into the pool file;
``python -m routing.evidence refresh|show`` is its command line.

Public figures are evidence about a model in general, not about a given prompt: a router may use
them as a prior, and still learns per prompt from outcomes.
"""
