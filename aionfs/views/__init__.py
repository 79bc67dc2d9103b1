"""Virtual query folders: search/, text/, colors/, tags/, by-date/.

Owns the virtual folders' paths, inodes and listings (tree.py), one class
per kind (kinds/), the query cache (queries.py) and the color grammar
(colorspec.py). May import the API client's errors, the store and the
FUSE-free fs model (fs/view.py); never the FUSE adapter or the daemon.
"""

from .kinds import ViewError
from .queries import QueryCache, QueryFailed
from .tree import ROOT_NAMES, VIRTUAL_BASE, Node, VirtualTree

__all__ = ["ROOT_NAMES", "VIRTUAL_BASE", "Node", "QueryCache", "QueryFailed", "ViewError",
           "VirtualTree"]
