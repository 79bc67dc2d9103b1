"""Which programs draw thumbnails: the ones a folder's opening should seed for.

File managers, file dialogs and image viewers are built on GTK, GIO or Qt;
`find`, `rsync`, `du`, `tar`, backup tools and scripts are not. Seeding for
every listing would turn one `find ~/Aion` into a variant request for every
image of the library (and gigabytes of PNGs in ~/.cache/thumbnails); seeding
for the toolkits' programs is what the thumbnails are for. Desktop indexers
(Tracker, Baloo) use those toolkits but crawl everything: they are left out
by name.

A request's pid (a thread id, as FUSE reports it) is mapped to its process
(`Tgid`), whose memory maps say which libraries it uses. The answer is kept
per process and start time, so a reused pid is asked again.
"""

from __future__ import annotations

from collections import OrderedDict

TOOLKITS = (b"/libgtk-3.so", b"/libgtk-4.so", b"/libgio-2.0.so", b"/libQt5Gui.so",
            b"/libQt6Gui.so", b"/libKF5KIOCore.so", b"/libKF6KIOCore.so")
#: process names (/proc/PID/comm, at most 15 characters) of desktop indexers
INDEXERS = frozenset({"tracker-miner-f", "tracker-extract", "tracker-store", "localsearch-3",
                      "localsearch", "baloo_file", "baloo_file_extr", "baloo_file_extractor",
                      "zeitgeist-fts", "updatedb", "updatedb.plocat"})
KEEP = 256


def _process(tid: int) -> tuple[int, str] | None:
    """(process id, start time) of a thread, from /proc."""
    try:
        with open(f"/proc/{tid}/status") as f:
            tgid = next(int(line.split()[1]) for line in f if line.startswith("Tgid:"))
        with open(f"/proc/{tgid}/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]  # field 22: starttime
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return tgid, start


def draws_thumbnails(tgid: int) -> bool:
    """Uncached: does this process use a toolkit that draws thumbnails?"""
    try:
        with open(f"/proc/{tgid}/comm") as f:
            if f.read().strip() in INDEXERS:
                return False
        with open(f"/proc/{tgid}/maps", "rb") as f:
            maps = f.read()
    except OSError:
        return False
    return any(lib in maps for lib in TOOLKITS)


class Consumers:
    def __init__(self) -> None:
        self._known: OrderedDict[tuple[int, str], bool] = OrderedDict()

    def wants(self, pid: int) -> bool:
        proc = _process(pid)
        if proc is None:
            return False
        known = self._known.get(proc)
        if known is None:
            known = self._known[proc] = draws_thumbnails(proc[0])
            while len(self._known) > KEEP:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(proc)
        return known
