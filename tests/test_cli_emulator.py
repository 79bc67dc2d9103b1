"""`aionfs` and `aionfs emulator` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from aionfs.api import ApiSettings
from aionfs.api.client import AionClient
from tests.conftest import start_emulator, stop_emulator


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aionfs", *args], capture_output=True,
                          text=True, timeout=60)


def test_help_explains_itself() -> None:
    top = run_cli("--help")
    assert top.returncode == 0 and "emulator" in top.stdout and "AIONVISION_API_KEY" in top.stdout
    emu = run_cli("emulator", "--help")
    assert emu.returncode == 0
    for word in ("--demo", "--faults", "--plan", "Example", "--port"):
        assert word in emu.stdout


def test_bad_options_are_one_clear_line(tmp_path: Path) -> None:
    res = run_cli("emulator", "--data", str(tmp_path), "--faults", "explode:1")
    assert res.returncode == 2 and "unknown fault 'explode'" in res.stderr
    assert "Traceback" not in res.stderr
    res = run_cli("emulator", "--data", str(tmp_path), "--plan", "gold")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run_cli("emulator", "--data", str(tmp_path), "--port", str(port))
    assert res.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in res.stderr
    assert "Traceback" not in res.stderr


async def test_demo_library_and_restart(tmp_path: Path) -> None:
    emu = start_emulator(tmp_path, "--demo", "--processing-delay", "0", "--plan", "enterprise")
    try:
        settings = ApiSettings.from_env(api_key=emu.api_key, base_url=emu.base_url,
                                        environ={}, plan="enterprise")
        async with AionClient(settings, unlimited=True) as c:
            files = [f async for f in c.iter_files()]
            folders = await c.folder_tree()
            in_folders = set()
            for folder in folders:
                in_folders |= {f.id async for f in c.iter_files(folder_id=folder.id)}
    finally:
        assert "Traceback" not in stop_emulator(emu)
    kinds = Counter(f.media_type for f in files)
    assert kinds["image"] >= 200 and kinds["document"] >= 4 and kinds["link"] >= 2
    assert {f.format for f in files if f.media_type == "image"} >= {"jpeg", "png", "webp"}
    sizes = {(f.dimensions.width, f.dimensions.height) for f in files if f.dimensions}
    assert len(sizes) >= 5
    assert {f.format for f in files if f.media_type == "document"} >= {"md", "txt", "pdf",
                                                                       "docx"}
    assert any(f.content_created_at for f in files)
    assert all(f.tags for f in files)
    assert max(f.depth for f in folders) >= 2
    root = [f for f in files if f.id not in in_folders]
    assert 0 < len(root) < len(files)
    families = Counter(f.upload_description.split(",")[0] for f in files
                       if f.media_type == "image" and f.upload_description)
    assert len(families) > 1

    # Restart: same key, same library, no second seeding.
    again = start_emulator(tmp_path, "--demo", "--processing-delay", "0", "--plan",
                           "enterprise")
    try:
        assert again.api_key == emu.api_key
        settings = ApiSettings.from_env(api_key=again.api_key, base_url=again.base_url,
                                        environ={}, plan="enterprise")
        async with AionClient(settings, unlimited=True) as c:
            assert (await c.list_files(limit=1)).total_count == len(files)
    finally:
        assert "Traceback" not in stop_emulator(again)
    assert again.proc.returncode == 0  # SIGTERM is a clean shutdown


def test_every_command_explains_itself_with_an_example() -> None:
    import click
    from click.testing import CliRunner

    from aionfs.cli import main

    def leaves(cmd: click.Command, path: list[str]) -> list[list[str]]:
        if isinstance(cmd, click.Group):
            return [p for name, sub in cmd.commands.items() for p in leaves(sub, path + [name])]
        return [path]

    commands = leaves(main, [])
    assert {"mount", "login", "doctor", "watch", "flush"} <= {c[0] for c in commands}
    for path in commands:
        out = CliRunner().invoke(main, [*path, "--help"])
        assert out.exit_code == 0 and "Example" in out.output, path
