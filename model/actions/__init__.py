"""The model's actions, one module per actor family; importing this package registers them."""
from . import device, kernel_access, lifecycle, pinning, resv, userspace  # noqa: F401  (registration)
from .registry import ACTIONS, DOMAINS, SYNC_FLAG_VALUES, ActionSpec, action

__all__ = ["ACTIONS", "DOMAINS", "SYNC_FLAG_VALUES", "ActionSpec", "action"]
