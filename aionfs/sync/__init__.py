"""Sync: keeps the metadata store following the workspace (lazy, crawl, polling).

Owns what the store knows of the workspace and the events that tell the
mount what changed. May import the API client and the store.
"""

from .engine import InconsistentAnswers, Syncer, SyncOptions, SyncReport
from .plan import MassDeleteRefused

__all__ = ["InconsistentAnswers", "MassDeleteRefused", "SyncOptions", "SyncReport", "Syncer"]
