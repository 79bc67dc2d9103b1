"""Stateful property test: random remote changes and syncs; the store always converges.

Hypothesis drives the emulator through the client (create, retitle, retag,
move and delete files; create, rename, move and delete folders in both
modes) and runs syncs in between. After every sync the store must equal the
workspace: the same folders, the same files in the same places, the same
titles and tags, and valid, distinct names. The same machine runs again with
the emulator injecting 5xx, resets and 429s.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import trio
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from aionfs.api import AionClient
from aionfs.api.errors import Conflict, NotFound, ValidationFailed
from aionfs.api.retry import RetryPolicy
from aionfs.store import Store
from aionfs.sync import Syncer, SyncOptions
from tests.conftest import EmulatorProcess, make_client
from tests.media import image_bytes
from tests.sync_helpers import assert_same, remote_shape

NAMES = st.sampled_from(["A", "B", "C", "Photos", "Same"])
TITLES = st.sampled_from(["pole", "crack", "Same", "x/y", None])
TAGS = st.lists(st.sampled_from(["rust", "pole", "site"]), max_size=2, unique=True)


def run(coro_fn, *args):  # type: ignore[no-untyped-def]
    return trio.run(coro_fn, *args)


class SyncMachine(RuleBasedStateMachine):
    emulator: EmulatorProcess
    faults: str = ""

    @initialize()
    def setup(self) -> None:
        self.key = self.emulator.new_tenant()
        self.dir = Path(tempfile.mkdtemp(prefix="aionfs-model-"))
        self.store = Store(self.dir / "m.sqlite3")
        self.files: list[str] = []
        self.folders: list[str] = []
        self.counter = 0

    def teardown(self) -> None:
        self.emulator.set_faults(self.key, "")
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _with_client(self, fn):  # type: ignore[no-untyped-def]
        async with make_client(self.emulator, self.key,
                               retry=RetryPolicy(max_attempts=8, base_delay=0.01,
                                                 max_delay=0.1)) as client:
            return await fn(client)

    def call(self, fn):  # type: ignore[no-untyped-def]
        """A remote change, made without faults (the faults are for the sync)."""
        async def go() -> object:
            return await self._with_client(fn)
        try:
            return run(go)
        except (Conflict, NotFound, ValidationFailed):
            return None  # a clash or a cycle: the API said no, nothing changed

    # -- remote changes ----------------------------------------------------------

    @rule(title=TITLES, tags=TAGS, where=st.integers(0, 9))
    def upload(self, title: str | None, tags: list[str], where: int) -> None:
        self.counter += 1
        data = image_bytes((self.counter % 256, where * 20, 7), (8, 8))

        async def go(c: AionClient) -> None:
            up = await c.upload_file(data, f"f{self.counter}.jpg", title=title, tags=tags)
            self.files.append(up.image_id)
            if self.folders and where < len(self.folders):
                await c.move_files([up.image_id], self.folders[where])
        self.call(go)

    @precondition(lambda self: self.files)
    @rule(i=st.integers(0, 99), title=TITLES, tags=TAGS)
    def retitle(self, i: int, title: str | None, tags: list[str]) -> None:
        fid = self.files[i % len(self.files)]
        self.call(lambda c: c.update_file(fid, title=title or "", tags=tags))

    @precondition(lambda self: self.files)
    @rule(i=st.integers(0, 99), j=st.integers(0, 9))
    def move_file(self, i: int, j: int) -> None:
        fid = self.files[i % len(self.files)]
        target = self.folders[j] if j < len(self.folders) else None
        self.call(lambda c: c.move_files([fid], target))

    @precondition(lambda self: self.files)
    @rule(i=st.integers(0, 99))
    def delete_file(self, i: int) -> None:
        fid = self.files.pop(i % len(self.files))
        self.call(lambda c: c.delete_file(fid))

    @rule(name=NAMES, parent=st.integers(0, 9))
    def create_folder(self, name: str, parent: int) -> None:
        pid = self.folders[parent] if parent < len(self.folders) else None

        async def go(c: AionClient) -> None:
            self.folders.append((await c.create_folder(name, pid)).id)
        self.call(go)

    @precondition(lambda self: self.folders)
    @rule(i=st.integers(0, 9), name=NAMES)
    def rename_folder(self, i: int, name: str) -> None:
        fid = self.folders[i % len(self.folders)]
        self.call(lambda c: c.rename_folder(fid, name))

    @precondition(lambda self: self.folders)
    @rule(i=st.integers(0, 9), j=st.integers(0, 9))
    def move_folder(self, i: int, j: int) -> None:
        fid = self.folders[i % len(self.folders)]
        target = self.folders[j] if j < len(self.folders) else None
        self.call(lambda c: c.move_folder(fid, target))

    @precondition(lambda self: self.folders)
    @rule(i=st.integers(0, 9), everything=st.booleans())
    def delete_folder(self, i: int, everything: bool) -> None:
        fid = self.folders[i % len(self.folders)]

        async def go(c: AionClient) -> None:
            await c.delete_folder(fid, mode="delete_all" if everything else "move_to_parent")
            tree = {f.id for f in await c.folder_tree()}
            self.folders[:] = [f for f in self.folders if f in tree]
            alive = {f.id async for f in c.iter_files()}
            self.files[:] = [f for f in self.files if f in alive]
        self.call(go)

    # -- syncs ---------------------------------------------------------------------

    def _sync(self, how: str) -> None:
        async def go(c: AionClient) -> None:
            syncer = Syncer(c, self.store, SyncOptions(allow_mass_delete=True))
            self.emulator.set_faults(self.key, self.faults, seed=self.counter)
            try:
                if how == "full":
                    await syncer.full_sync()
                else:
                    await syncer.poll()
                    await syncer.revalidate(older_than=-1, limit=10_000)
            finally:
                self.emulator.set_faults(self.key, "")
            assert_same(self.store, await remote_shape(c))
        run(self._with_client, go)

    @rule()
    def poll_and_revalidate(self) -> None:
        self._sync("poll")

    @rule()
    def full_sync(self) -> None:
        self._sync("full")

    @invariant()
    def names_are_valid(self) -> None:
        from tests.sync_helpers import check_names

        if hasattr(self, "store"):
            check_names(self.store)


MODEL_SETTINGS = settings(max_examples=20, stateful_step_count=20, deadline=None,
                          suppress_health_check=list(HealthCheck), derandomize=True)
FAULT_SETTINGS = settings(MODEL_SETTINGS, max_examples=10, stateful_step_count=15)


def test_store_converges(emulator: EmulatorProcess) -> None:
    SyncMachine.emulator = emulator
    SyncMachine.faults = ""
    run_state_machine_as_test(SyncMachine, settings=MODEL_SETTINGS)


def test_store_converges_under_faults(emulator: EmulatorProcess) -> None:
    class FaultyMachine(SyncMachine):
        faults = "500:0.1,reset:0.05,429:0.03,burst:2"

    FaultyMachine.emulator = emulator
    run_state_machine_as_test(FaultyMachine, settings=FAULT_SETTINGS)
