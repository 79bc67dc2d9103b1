"""Settings: key shape, masking everywhere, and no plain http to other machines."""

from __future__ import annotations

import logging
import pickle

import pytest

from aionfs.api import AionClient, ApiKey, ApiSettings, SettingsError
from aionfs.api.settings import DEFAULT_BASE_URL

KEY = "aion_" + "k3y" * 10


def test_key_shape_is_checked_without_echoing_it() -> None:
    for bad in ("", "aion_short", "sk_" + "x" * 30, "aion_" + "x" * 19, "aion_" + "é" * 25,
                "aion_" + "x" * 25 + " extra"):
        with pytest.raises(SettingsError) as info:
            ApiKey(bad)
        if bad:
            assert bad not in str(info.value)
    assert ApiKey("  " + KEY + "\n").reveal() == KEY


def test_key_never_prints() -> None:
    key = ApiKey(KEY)
    settings = ApiSettings(api_key=key, base_url="http://127.0.0.1:1/api/v2")
    for text in (repr(key), str(key), f"{key}", repr(settings), str(settings),
                 repr(AionClient(settings))):
        assert KEY not in text and "k3yk3y" not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_from_env_and_arguments() -> None:
    s = ApiSettings.from_env(environ={"AIONVISION_API_KEY": KEY})
    assert s.base_url == DEFAULT_BASE_URL and s.api_key.reveal() == KEY
    s = ApiSettings.from_env(environ={"AIONVISION_API_KEY": KEY,
                                      "AIONVISION_BASE_URL": "https://eu.example.com/api/v2/"})
    assert s.base_url == "https://eu.example.com/api/v2"
    other = "aion_" + "z" * 24
    s = ApiSettings.from_env(api_key=other, base_url="http://localhost:9/api/v2",
                             environ={"AIONVISION_API_KEY": KEY})
    assert s.api_key.reveal() == other  # arguments win over the environment
    with pytest.raises(SettingsError, match="AIONVISION_API_KEY"):
        ApiSettings.from_env(environ={})


@pytest.mark.parametrize("url", ["http://api.example.com/api/v2", "http://10.0.0.5:8765/api/v2",
                                 "ftp://127.0.0.1/x", "https://user:pw@example.com/api",
                                 "not a url"])
def test_unsafe_base_urls_are_refused(url: str) -> None:
    with pytest.raises(SettingsError):
        ApiSettings(api_key=ApiKey(KEY), base_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/api/v2", "http://localhost/api/v2",
                                 "http://[::1]:80/api/v2", "https://api.example.com/api/v2"])
def test_loopback_http_and_https_are_allowed(url: str) -> None:
    assert ApiSettings(api_key=ApiKey(KEY), base_url=url).base_url == url


def test_plan_limits() -> None:
    s = ApiSettings(api_key=ApiKey(KEY), plan="starter")
    assert (s.rate_per_minute, s.batch_limit) == (30, 50)
    assert ApiSettings(api_key=ApiKey(KEY), requests_per_minute=7).rate_per_minute == 7
    with pytest.raises(SettingsError):
        ApiSettings(api_key=ApiKey(KEY), plan="gold")


async def test_key_is_absent_from_logs_and_errors(emulator, caplog) -> None:  # type: ignore[no-untyped-def]
    from aionfs.api.errors import AuthError

    bogus = "aion_" + "n0tr3al" * 4
    caplog.set_level(logging.DEBUG)
    settings = ApiSettings.from_env(api_key=bogus, base_url=emulator.base_url, environ={})
    async with AionClient(settings) as c:
        with pytest.raises(AuthError) as info:
            await c.folder_tree()
    assert info.value.status == 401 and info.value.code == "INVALID_API_KEY"
    everything = caplog.text + str(info.value) + repr(info.value) + repr(info.value.details)
    assert bogus not in everything and "n0tr3al" not in everything
