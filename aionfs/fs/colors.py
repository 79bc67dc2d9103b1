"""`user.aion.colors`: an image's dominant colors, asked of the service sparingly.

`files.colors` NULL means never answered; '' means the service finished and
found none (or failed for good), so ENOATTR without a request. An analysis
still running is asked again only after COLORS_RETRY. Readers of one file
at the same time share one request.
"""

from __future__ import annotations

import errno

import trio

from ..api import AionClient, answer_after
from ..api.errors import ApiError
from ..store import Store
from .view import FsError

#: An image whose color analysis the service has not finished (pending, processing) is
#: asked again at most this often (seconds): `getfattr -d` in a loop, a file manager's
#: properties dialog reopened, must not cost a request each. Kept in memory only: a
#: remount may ask once more. A finished answer (even "no colors") is stored for good.
COLORS_RETRY = 600.0
#: Answers of GET /colors/images/{id} that will not change for the file's bytes.
COLORS_FINAL = frozenset({"completed", "failed"})
#: how long a reader waits for the answer (time queued for the plan's budget excluded)
ANSWER_WAIT = 10.0


class ImageColors:
    def __init__(self, store: Store, client: AionClient) -> None:
        self.store = store
        self.client = client
        #: file id → when (trio clock) the service last said its colors are not ready
        self._pending: dict[str, float] = {}
        #: file id → set when the one request in flight for its colors has ended
        self._asking: dict[str, trio.Event] = {}

    def new_bytes(self, file_id: str) -> None:
        """The file has new bytes: a new analysis, worth asking for at once."""
        self._pending.pop(file_id, None)

    async def of(self, inode: int) -> tuple[bytes, bool]:
        """(the colors as the xattr shows them, b'' for none yet; whether they were
        stored just now). FsError(EIO) when the service cannot be asked."""
        row = self.store.file_by_inode(inode)
        if row is None or row["media_type"] != "image":
            return b"", False
        file_id = row["id"]
        while row["colors"] is None and file_id in self._asking:
            await self._asking[file_id].wait()  # another reader's request: its answer
            row = self.store.file_by_inode(inode)
            if row is None or row["id"] != file_id:  # deleted or replaced meanwhile
                return b"", False
        if row["colors"] is not None:
            return str(row["colors"]).encode(), False
        asked = self._pending.get(file_id)
        if asked is not None and trio.current_time() - asked < COLORS_RETRY:
            return b"", False  # still being analysed a moment ago: not worth a request yet
        done = self._asking[file_id] = trio.Event()
        try:
            with answer_after(ANSWER_WAIT):
                res = await self.client.image_colors(file_id)
        except (ApiError, trio.TooSlowError) as exc:
            raise FsError(errno.EIO, f"fetching colors: {exc or 'no answer'}") from None
        finally:
            del self._asking[file_id]
            done.set()
        if res.status not in COLORS_FINAL:
            self._pending[file_id] = trio.current_time()
            return b"", False
        self._pending.pop(file_id, None)
        dominant = res.color_analysis.dominant_colors if res.color_analysis else []
        text = "\n".join(f"{c.hex} {c.name or ''} {c.percentage:g}%".replace("  ", " ")
                         for c in dominant)
        with self.store.transaction():
            self.store.set_file_fields(file_id, colors=text)
        return text.encode(), True
