"""How many lookups of each inode the kernel holds, in 4 bytes an inode.

The kernel counts every entry it was given (lookup, create, readdirplus) and
returns the counts with `forget`; what the daemon keeps for an inode (a
folder's listing, a virtual folder) goes when the count reaches zero, and
notifications are sent only for inodes the kernel holds. After a `find` over
a million-file library the kernel holds a million inodes: as a Counter that
was some 100 MB. The store numbers its inodes densely from 1, so their counts
live in an array indexed by inode; virtual folders (numbered from 2**48) and
anything else past `DENSE` in a dict.
"""

from __future__ import annotations

from array import array

#: inodes below this are counted in the array (it grows to the largest one held)
DENSE = 1 << 26


class LookupCounts:
    __slots__ = ("_dense", "_sparse", "_held")

    def __init__(self) -> None:
        self._dense = array("I")
        self._sparse: dict[int, int] = {}
        self._held = 0  # inodes with a count above zero

    def add(self, inode: int, n: int = 1) -> None:
        """The kernel was given `n` more entries of this inode."""
        if inode < DENSE:
            dense = self._dense
            if inode >= len(dense):
                dense.frombytes(bytes(4 * max(inode + 1 - len(dense), len(dense), 1024)))
            if not dense[inode]:
                self._held += 1
            dense[inode] += n
        else:
            if inode not in self._sparse:
                self._held += 1
            self._sparse[inode] = self._sparse.get(inode, 0) + n

    def forget(self, inode: int, n: int) -> bool:
        """The kernel returned `n` of them; True when it holds the inode no more."""
        left = self[inode] - n
        if left > 0:
            self._set(inode, left)
            return False
        self.pop(inode)
        return True

    def __getitem__(self, inode: int) -> int:
        if inode < DENSE:
            return self._dense[inode] if inode < len(self._dense) else 0
        return self._sparse.get(inode, 0)

    def _set(self, inode: int, count: int) -> None:
        if inode < DENSE:
            self._dense[inode] = count
        else:
            self._sparse[inode] = count

    def pop(self, inode: int) -> None:
        if not self[inode]:
            return
        self._held -= 1
        if inode < DENSE:
            self._dense[inode] = 0
        else:
            del self._sparse[inode]

    def __contains__(self, inode: object) -> bool:
        return isinstance(inode, int) and self[inode] > 0

    def __len__(self) -> int:
        return self._held
