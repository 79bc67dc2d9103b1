"""The benchmarks that run in-process against the store: they call the store's
own API, which moves with the code (a listing that became a generator once
broke `make bench` after every test here had passed)."""

from __future__ import annotations

import pytest

from tests.bench.__main__ import bench_readdir


def test_the_readdir_benchmark_runs_against_the_store_as_it_is(
        capsys: pytest.CaptureFixture[str]) -> None:
    bench_readdir()
    line = capsys.readouterr().out
    assert line.startswith("readdir 10,000 entries (store)") and "ratio" in line
