"""Runs: tasks of engines on exporter policies, dispatched to workers, merged and judged.

``runner`` is the one loop "for each exporter and revision: model, engines, judge" that every
front-end uses (campaign, explore, prove, review, scaled and clustered runs).
"""
