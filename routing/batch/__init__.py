"""Batch routing of prompt files: ``python -m routing.batch INPUT --out OUTPUT``.

- ``io``: reading CSV / JSONL / Parquet inputs, the results store (resumable JSONL, the journal of
  paid calls in flight) and the formula-safe CSV;
- ``rows``: the engine-independent part: the modes, one row routed / answered / compared, the summary;
- ``local``: the local engine (this process) and the app's batch jobs;
- ``ray_engine``: the same rows on a Ray Data actor pool;
- ``cli``: the command line for both engines;
- ``money``: dollars as people read them and floats without noise (imports nothing).

Imports the core (router, pool, errors), ``routing.compare`` (compare mode) and ``routing.charts``;
nothing in ``routing`` imports it but ``ui/`` and the tests, and ``routing.charts`` its ``money``.
"""
