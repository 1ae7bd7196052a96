"""Campaigns at scale with the Hypothesis engine: the shards of every exporter on every core or a
Dask cluster, slot after slot until a time budget is spent, counterexamples kept in the example
database (docs/scale.md). The campaign itself is ``properties.runs.campaign.run_campaign``; the
command-line options are ``campaign --budget --database --cluster --property-groups``
(``properties.cli.app``)."""
from __future__ import annotations

from typing import Callable, Sequence

from model.policy import ExporterPolicy
from model.scope import Scope

from ..report.atomic import write_report
from .campaign import (CHECKPOINT_SECONDS, CampaignResult, default_jobs, format_duration, parse_duration,
                       run_campaign)
from .database import default_spec

__all__ = ["parse_duration", "format_duration", "default_jobs", "run_scaled", "CHECKPOINT_SECONDS"]


def run_scaled(exporters: Sequence[ExporterPolicy], scope: Scope, revision: str, *, examples: int, seed: int,
               steps: int, jobs: int | None = None, progress: Callable[[str], None] | None = None,
               database: str | None = None, cluster: str | None = None, duration: float | None = None,
               duration_text: str | None = None, grouping: str = "all", report: str | None = None,
               ) -> CampaignResult:
    """A Hypothesis campaign at scale. ``jobs``: worker processes (``None``: every core this process
    may use); ``database``: an example-database spec (``None``: the default, ``default_spec()``;
    ``"none"``: no database); ``cluster``: a Dask scheduler address; ``duration``: seconds to spend
    (``duration_text`` as the user wrote it, for the report); ``report``: a JSON path, written at
    every checkpoint of a run with a duration. A bad database or cluster raises
    ``properties.runs.database.DatabaseError`` or ``properties.runs.cluster.ClusterError``."""
    checkpoint = None
    if report and duration is not None:
        def checkpoint(r: CampaignResult) -> None:
            write_report(r.to_json(), report)
    return run_campaign(exporters, scope, revision, examples=examples, seed=seed, steps=steps,
                        jobs=jobs if jobs else default_jobs(), progress=progress,
                        database=default_spec() if database is None else database, cluster=cluster,
                        duration=duration, duration_text=duration_text, grouping=grouping, checkpoint=checkpoint)
