"""Where the client connects and with which key, checked before any request.

The key is wrapped in `ApiKey` so that it cannot leak by accident: its repr
and str are masked, and the only way to the real value is `.reveal()`, which
the client calls in exactly one place (building the Authorization header).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..vendor import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_KEY, PLAN_LIMITS

__all__ = ["DEFAULT_BASE_URL", "ENV_BASE_URL", "ENV_KEY", "PLAN_LIMITS", "ApiKey",
           "ApiSettings", "SettingsError"]

_KEY_RE = re.compile(r"^aion_[A-Za-z0-9_\-]{20,200}$")


class SettingsError(ValueError):
    """The configuration cannot work; the message says how to fix it."""


class ApiKey:
    """An API key that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not _KEY_RE.match(value):
            # Say what is wrong without echoing what was given.
            raise SettingsError(
                "the API key is malformed: keys look like 'aion_' followed by at least "
                "20 letters, digits, '-' or '_' (create one in the Aionvision dashboard)"
            )
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        return f"aion_…{self._value[-4:]}"

    def __repr__(self) -> str:
        return f"ApiKey({self.masked()!r})"

    __str__ = masked

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple:  # pickling would write it out; refuse
        raise TypeError("ApiKey cannot be pickled")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """Refuse URLs that would send the key in clear text to another machine."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"the base URL {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise SettingsError("the base URL must not contain credentials")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise SettingsError(
            f"refusing plain http to {parts.hostname}: the API key would cross the network "
            "unencrypted; use https (plain http is allowed only for loopback addresses)"
        )
    return url


@dataclass(frozen=True)
class ApiSettings:
    """Everything needed to talk to one workspace."""

    api_key: ApiKey
    base_url: str = DEFAULT_BASE_URL
    plan: str = "free"
    #: Overrides the plan's requests per minute (None: the plan's figure).
    requests_per_minute: int | None = None
    timeout: float = 30.0
    max_attempts: int = 5
    user_agent: str = field(default="aionfs/0.1")

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_base_url(self.base_url))
        if self.plan not in PLAN_LIMITS:
            raise SettingsError(
                f"unknown plan {self.plan!r}: choose one of {', '.join(PLAN_LIMITS)}"
            )

    @property
    def rate_per_minute(self) -> int:
        return self.requests_per_minute or PLAN_LIMITS[self.plan][0]

    @property
    def batch_limit(self) -> int:
        return PLAN_LIMITS[self.plan][1]

    @classmethod
    def from_env(
        cls,
        api_key: str | None = None,
        base_url: str | None = None,
        environ: dict[str, str] | None = None,
        **kw: object,
    ) -> ApiSettings:
        """Arguments first, then `AIONVISION_API_KEY` / `AIONVISION_BASE_URL`."""
        env = os.environ if environ is None else environ
        key = api_key or env.get(ENV_KEY)
        if not key:
            raise SettingsError(
                f"no API key: set {ENV_KEY} (or run 'aionfs login') — never pass it on the "
                "command line, where other users can read it"
            )
        return cls(
            api_key=ApiKey(key),
            base_url=base_url or env.get(ENV_BASE_URL) or DEFAULT_BASE_URL,
            **kw,  # type: ignore[arg-type]
        )
