"""Virtual query folders: search/, text/, colors/, tags/, by-date/."""

from .queries import QueryCache, QueryFailed
from .tree import ROOT_NAMES, VIRTUAL_BASE, Node, ViewError, VirtualTree

__all__ = ["ROOT_NAMES", "VIRTUAL_BASE", "Node", "QueryCache", "QueryFailed", "ViewError",
           "VirtualTree"]
