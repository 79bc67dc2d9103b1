"""Profiles, precedence, key files and the commands around them (login, config show, doctor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aionfs.api.errors import ApiError
from aionfs.api.settings import ApiKey
from aionfs.config import ConfigError, load_profile
from aionfs.credentials import CredentialsError, find_key, key_path, save_key
from aionfs.daemon.plan import ask_service
from tests.conftest import EmulatorProcess

KEY = "aion_" + "k" * 28


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for var in ("AIONFS_PROFILE", "AIONFS_PLAN"):
        monkeypatch.delenv(var, raising=False)
    (home / "aionfs").mkdir(parents=True)
    return home


def write_config(home: Path, text: str) -> None:
    (home / "aionfs" / "config.toml").write_text(text)


def aionfs(*args: str, env: dict[str, str], stdin: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aionfs", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_flags_beat_environment_beat_the_file(config_home: Path) -> None:
    write_config(config_home, """
default_profile = "work"
[profiles.work]
plan = "starter"
base_url = "https://files.example.com/api/v2"
poll_interval = 30
mountpoint = "~/Work"
[[profiles.work.watch]]
dir = "~/Scans"
to = "/Inspections/Scans/"
tags = ["scan"]
""")
    env = {"AIONVISION_BASE_URL": "http://127.0.0.1:9/api/v2"}
    p = load_profile(environ=env)
    assert (p.name, p.plan, p.poll_interval) == ("work", "starter", 30.0)
    assert p.base_url == "http://127.0.0.1:9/api/v2" and p.source["base_url"] == "environment"
    assert p.mountpoint == Path("~/Work").expanduser()
    assert p.watch[0].to == "Inspections/Scans" and p.watch[0].tags == ("scan",)
    flagged = p.with_overrides("command line", plan="enterprise", poll_interval=None)
    assert flagged.plan == "enterprise" and flagged.poll_interval == 30.0
    assert load_profile(environ={"AIONFS_PLAN": "professional"}).plan == "professional"


@pytest.mark.parametrize(("text", "message"), [
    ("[profiles.a]\npoll_interval = 'soon'", "poll_interval must be a number of seconds"),
    ("[profiles.a]\nrank_names = 1", "rank_names must be a bool"),
    ("[profiles.a]\nplan = 'gold'", "unknown plan 'gold'"),
    ("[profiles.a]\napi_key = 'aion_x'", "does not belong in the config file"),
    ("[profiles.a]\ncolour = 'red'", "colour: unknown setting"),
    ("[profiles.a]\ncache_size = 'lots'", "is not a size"),
    ("[profiles.a\n", "is not valid TOML"),
])
def test_a_bad_config_names_the_file_and_the_setting(config_home: Path, text: str,
                                                     message: str) -> None:
    write_config(config_home, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_profile("a", environ={})
    assert str(config_home) in str(info.value)


def test_an_unknown_profile_lists_the_known_ones(config_home: Path) -> None:
    write_config(config_home, "[profiles.home]\n[profiles.work]\n")
    with pytest.raises(ConfigError, match="profiles there: home, work"):
        load_profile("play", environ={})


def test_the_key_file_is_private_and_a_readable_one_is_refused(config_home: Path) -> None:
    path = save_key("work", ApiKey(KEY))
    assert path == key_path("work")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert find_key("work", environ={}) == (ApiKey(KEY), str(path))
    # the environment wins over the file
    other = "aion_" + "e" * 24
    assert find_key("work", environ={"AIONVISION_API_KEY": other}) == (ApiKey(other),
                                                                       "environment")
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match=f"chmod 600 {path}"):
        find_key("work", environ={})
    assert KEY not in str(pytest.raises(CredentialsError, find_key, "work", environ={}).value)


def test_login_checks_the_key_stores_it_and_config_show_masks_it(
        config_home: Path, emulator: EmulatorProcess) -> None:
    key = emulator.new_tenant()
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home),
           "AIONVISION_BASE_URL": emulator.base_url}
    env.pop("AIONVISION_API_KEY", None)
    refused = aionfs("login", env=env, stdin="aion_" + "0" * 30 + "\n")
    assert refused.returncode == 1 and "refused the key" in refused.stderr
    assert not key_path("default").exists()
    done = aionfs("login", env=env, stdin=key + "\n")
    assert done.returncode == 0, done.stderr
    assert key_path("default").read_text().strip() == key
    shown = aionfs("config", "show", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)["settings"]
    assert settings["api_key"] == {"value": f"aion_…{key[-4:]}",
                                   "from": str(key_path("default"))}
    assert settings["base_url"] == {"value": emulator.base_url, "from": "environment"}
    assert key not in shown.stdout + shown.stderr + done.stdout + done.stderr
    # the stored key is what every other command now uses
    listed = aionfs("sync", "--cache-dir", str(config_home / "cache"), env=env)
    assert listed.returncode == 0, listed.stderr


def test_a_malformed_key_on_stdin_is_one_line_and_never_echoed(config_home: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    res = aionfs("login", env=env, stdin="aion_short-secret\n")
    assert res.returncode == 1 and "malformed" in res.stderr
    assert "short-secret" not in res.stderr and "Traceback" not in res.stderr


def test_doctor_names_each_failure_with_a_fix(config_home: Path, tmp_path: Path,
                                              emulator: EmulatorProcess) -> None:
    where = tmp_path / "full"
    where.mkdir()
    (where / "something").write_text("x")
    write_config(config_home, f'[profiles.default]\nmountpoint = "{where}"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home),
           "AIONVISION_BASE_URL": emulator.base_url}
    env.pop("AIONVISION_API_KEY", None)
    res = aionfs("doctor", env=env)
    assert res.returncode == 1
    assert "FAIL mountpoint" in res.stdout and "is not empty" in res.stdout
    assert "FAIL API key: no key" in res.stdout and "fix: run 'aionfs login'" in res.stdout
    assert "ok   FUSE" in res.stdout
    (where / "something").unlink()
    env["AIONVISION_API_KEY"] = emulator.new_tenant()
    res = aionfs("doctor", env=env)
    assert res.returncode == 0, res.stdout
    assert "ok   API: " in res.stdout and "requests/minute" in res.stdout
    env["AIONVISION_BASE_URL"] = "http://127.0.0.1:9/api/v2"  # nothing listens there
    res = aionfs("doctor", env=env)
    assert res.returncode == 1 and "FAIL API" in res.stdout and "not reachable" in res.stdout


@pytest.mark.parametrize(("plan", "rpm"), [("free", 10), ("professional", 100)])
def test_doctor_shows_the_plan_and_where_it_came_from(
        config_home: Path, emulator: EmulatorProcess, plan: str, rpm: int) -> None:
    """Without a plan in the profile doctor asks the service once, as the mount does;
    a plan given (the profile, --plan, $AIONFS_PLAN) is shown with its origin, unasked."""
    key = emulator.new_tenant(plan=plan)
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home),
           "AIONVISION_BASE_URL": emulator.base_url, "AIONVISION_API_KEY": key}
    res = aionfs("doctor", env=env)
    assert f"plan {plan} (from the service): {rpm} requests/minute" in res.stdout, res.stdout
    asked = [e["path"] for e in emulator.requests(key) if e["path"].endswith("/usage/summary")]
    assert len(asked) == 1
    write_config(config_home, '[profiles.default]\nplan = "starter"\n')
    res = aionfs("doctor", env=env)
    assert "plan starter (from the profile): 30 requests/minute" in res.stdout, res.stdout
    res = aionfs("doctor", "--plan", "enterprise", env=env)
    assert "plan enterprise (from --plan): 500 requests/minute" in res.stdout, res.stdout
    res = aionfs("doctor", env={**env, "AIONFS_PLAN": "free"})
    assert "plan free (from $AIONFS_PLAN): 10 requests/minute" in res.stdout, res.stdout
    asked = [e["path"] for e in emulator.requests(key) if e["path"].endswith("/usage/summary")]
    assert len(asked) == 1  # a plan given is not asked for


class _Asked:
    """A client whose `plan_name` answers (or fails) as told."""

    def __init__(self, answer: str | None | Exception) -> None:
        self.answer = answer

    async def plan_name(self) -> str | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(("answer", "name", "why"), [
    ("starter", "starter", ""),
    (None, None, "its answer names no plan"),
    ("gold", None, "it names the plan 'gold', which aionfs does not know"),
    (ApiError("boom"), None, "it could not be asked: boom"),
])
async def test_the_service_plan_or_why_not(answer: str | None | Exception, name: str | None,
                                           why: str) -> None:
    """What doctor prints and the mount logs when the service cannot tell the plan."""
    asked = await ask_service(_Asked(answer))  # type: ignore[arg-type]
    assert (asked.name, asked.why_not) == (name, why)
    assert asked.answered == (not isinstance(answer, Exception))


def test_the_settings_table_in_the_docs_is_the_declaration() -> None:
    from aionfs.config import settings_table
    from tests.docs_tables import current

    assert current("operations.md", "settings table") == settings_table(), \
        "docs/operations.md is stale: run python -m tests.docs_tables"


@pytest.mark.parametrize(("flag", "key", "value", "accepted"), [
    ("--write-back-delay", "write_back_delay", "0", True),  # once refused by the file only
    ("--thumbnail-wait", "thumbnail_wait", "0", True),
    ("--poll-interval", "poll_interval", "0.05", False),
    ("--query-ttl", "query_ttl", "0.5", False),
    ("--read-timeout", "read_timeout", "soon", False),
    ("--cache-size", "cache_size", "'lots'", False),
    ("--thumbnail-sizes", "thumbnail_sizes", "'huge'", False),
    ("--rpm", "rpm", "-1", False),
])
def test_a_flag_and_the_config_file_take_a_setting_the_same_way(
        config_home: Path, tmp_path: Path, flag: str, key: str, value: str,
        accepted: bool) -> None:
    """Each setting is declared once: its flag and its config key accept the same
    values and refuse the same ones with the same reason."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home),
           "AIONVISION_API_KEY": KEY, "AIONVISION_BASE_URL": "http://127.0.0.1:9/api/v2"}
    raw = value.strip("'")
    toml = value if not value.replace(".", "").replace("-", "").isdigit() else raw
    if key == "thumbnail_sizes":
        toml = f"[{value}]"
    if key == "read_timeout":
        toml = "'soon'"
    write_config(config_home, f"[profiles.a]\n{key} = {toml}\n")
    shown = aionfs("config", "show", "--profile", "a", env=env)
    # a missing mountpoint is the only complaint left when the flag is accepted
    flagged = aionfs("mount", str(tmp_path / "nowhere"), flag, raw, env=env)
    if accepted:
        assert shown.returncode == 0, shown.stderr
        assert "does not exist" in flagged.stderr and flagged.returncode != 2, flagged.stderr
    else:
        assert shown.returncode == 2 and flagged.returncode == 2, (shown.stderr, flagged.stderr)
        reason = shown.stderr.strip().rsplit(f"{key} ", 1)[-1].split(", not")[0]
        assert reason and reason in flagged.stderr, (shown.stderr, flagged.stderr)


def test_a_directory_setting_naming_a_file_is_refused_by_flag_and_file_alike(
        config_home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home),
           "AIONVISION_API_KEY": KEY, "AIONVISION_BASE_URL": "http://127.0.0.1:9/api/v2"}
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory")
    write_config(config_home, f"[profiles.a]\ncache_dir = '{a_file}'\n")
    shown = aionfs("config", "show", "--profile", "a", env=env)
    flagged = aionfs("sync", "--cache-dir", str(a_file), env=env)
    assert shown.returncode == 2 and "is not a directory" in shown.stderr, shown.stderr
    assert flagged.returncode == 2 and "is not a directory" in flagged.stderr, flagged.stderr
