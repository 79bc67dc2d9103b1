"""Sync: keeps the metadata store following the workspace (lazy, crawl, polling)."""

from .engine import InconsistentAnswers, Syncer, SyncOptions, SyncReport
from .plan import MassDeleteRefused

__all__ = ["InconsistentAnswers", "MassDeleteRefused", "SyncOptions", "SyncReport", "Syncer"]
