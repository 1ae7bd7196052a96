"""Runs: tasks of engines on exporter policies, dispatched to workers, merged and judged.

``runner`` is the one loop "for each exporter and revision: model, engines, judge" that every
front-end uses (campaign, explore, prove, review, scaled and clustered runs). ``campaign`` runs
and judges a campaign, cut into ``shards`` with the Hypothesis engine, at ``scale`` on every core or
a Dask cluster (``workers``, ``cluster``), with the example ``database`` and ``coverage``.
"""
