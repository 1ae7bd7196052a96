"""dmabuf-check's model of the Linux dma-buf CPU-access rules (kernel commit 0959a1683d78, v4.11).

The public face: :class:`Model` (a scope, an exporter policy and a revision, compiled), the
exporter policy catalog, the scopes, the state schema, the events, and the term vocabulary that
transitions and properties are written in. This package imports no engine.
"""
from .actions import ACTIONS, ActionSpec
from .catalog import CATALOG, get_policy
from .constants import errno_name
from .events import EVENT_BIT, EVENTS, event_names
from .machine import Instance, Model, TransitionTerms, format_call, transition_terms
from .policy import KNOBS, REVISIONS, ExporterPolicy, PolicyError, load_policy_file
from .scope import SCOPES, Scope, get_scope
from .state import FIELDS, Schema

__all__ = [
    "ACTIONS", "ActionSpec", "CATALOG", "get_policy", "errno_name", "EVENT_BIT", "EVENTS",
    "event_names", "Instance", "Model", "TransitionTerms", "format_call", "transition_terms",
    "KNOBS", "REVISIONS", "ExporterPolicy", "PolicyError", "load_policy_file", "SCOPES", "Scope",
    "get_scope", "FIELDS", "Schema",
]
