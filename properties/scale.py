"""The campaign command's options for campaigns at scale: ``--budget`` (a duration),
``--database``, ``--cluster`` and ``--property-groups``; the campaign itself is
``properties.campaign.run_campaign``."""
from __future__ import annotations

from typing import Callable, Sequence

from model.policy import ExporterPolicy
from model.scope import Scope

from . import shards as _shards
from .campaign import (CHECKPOINT_SECONDS, CampaignResult, default_jobs, format_duration, parse_duration,
                       run_campaign, write_report)

__all__ = ["parse_duration", "format_duration", "default_jobs", "add_arguments", "run_from_args",
           "CHECKPOINT_SECONDS"]


def add_arguments(c) -> None:
    """The campaign command's options for scale (called by properties.cli)."""
    c.add_argument("--budget", metavar="DURATION",
                   help="run slot after slot of shards until this much time is spent (90s, 30m, 8h)")
    c.add_argument("--database", metavar="DIR|redis://HOST:PORT/N|none",
                   help="where counterexamples are kept and replayed from (default: $DMABUF_CHECK_DATABASE, "
                        "else .cache/hypothesis in the project or $DMABUF_CHECK_CACHE/hypothesis)")
    c.add_argument("--cluster", metavar="tcp://HOST:PORT", help="run the shards on this Dask scheduler")
    c.add_argument("--property-groups", choices=sorted(_shards.GROUPINGS), default="all",
                   help="cut each exporter's properties into groups run as separate shards (default: all)")


def run_from_args(a, exporters: Sequence[ExporterPolicy], scope: Scope,
                  progress: Callable[[str], None]) -> CampaignResult:
    """The campaign command with the Hypothesis engine: options -> run_campaign (bad options
    raise properties.cli.UsageError, one line)."""
    from .cli import UsageError
    from .database import DatabaseError, default_spec
    from .runs.cluster import ClusterError

    budget = None
    if a.budget is not None:
        try:
            budget = parse_duration(a.budget)
        except ValueError as e:
            raise UsageError(f"--budget: {e}") from None
    jobs = a.jobs if a.jobs else default_jobs()
    database = default_spec() if a.database is None else a.database
    checkpoint = None
    if a.json and budget is not None:
        def checkpoint(r: CampaignResult) -> None:
            write_report(r.to_json(), a.json)
    try:
        return run_campaign(exporters, scope, a.revision, examples=a.examples, seed=a.seed, steps=a.steps,
                            jobs=jobs, progress=progress, database=database, cluster=a.cluster,
                            duration=budget, duration_text=a.budget, grouping=a.property_groups,
                            checkpoint=checkpoint)
    except (DatabaseError, ClusterError) as e:
        raise UsageError(str(e)) from None
