"""The emulator's object storage: content-addressed files and presigned URLs.

A presigned URL is `/storage/<key>?t=<tenant>&expires=<unix>[&ct=<type>]&sig=<hmac>`
where the HMAC (SHA-256, a per-data-dir secret) covers the key, the tenant
tag, the expiry and the content type the answer carries (S3's
`response-content-type`), like S3's query signing. Each workspace's URL policy
(`UrlPolicy`: how long URLs live, what a list item's `full_url` points at) can
be changed by tests to play the other readings of the vendor's documents. The tenant tag only attributes
storage traffic to a workspace in the request log. The storage routes accept no API key: like S3, a request that
carries both a signature and an Authorization header is refused (400), which
is how the tests prove the client never sends its key to the storage host.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

URL_LIFETIME = 3600


@dataclass
class UrlPolicy:
    """How the service presigns one workspace's URLs.

    `list_full_url`: what a list item's `full_url` is. The vendor's UserFile
    schema says "URL to full/original image" (so "original", the default here),
    the details schema and files.md call it the 1024 px variant ("large").
    """

    lifetime: int = URL_LIFETIME
    list_full_url: str = "original"


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        secret_file = root / ".secret"
        if not secret_file.exists():
            tmp = secret_file.with_suffix(".tmp")
            tmp.write_bytes(secrets.token_bytes(32))
            os.replace(tmp, secret_file)
        self._secret = secret_file.read_bytes()
        self.policies: dict[str, UrlPolicy] = {}

    def policy(self, tenant: str) -> UrlPolicy:
        return self.policies.get(tenant[:8]) or UrlPolicy()

    def set_policy(self, tenant: str, **fields: object) -> None:
        policy = self.policies.setdefault(tenant[:8], UrlPolicy())
        for name, value in fields.items():
            if name not in ("lifetime", "list_full_url"):
                raise ValueError(f"unknown URL policy field {name!r}")
            if name == "list_full_url" and value not in ("original", "large"):
                raise ValueError("list_full_url: 'original' or 'large'")
            setattr(policy, name, int(value) if name == "lifetime" else value)  # type: ignore[call-overload]

    def put(self, data: bytes) -> str:
        """Store bytes; the key is their SHA-256 (identical content stored once)."""
        key = hashlib.sha256(data).hexdigest()
        path = self.path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return key

    def path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise KeyError(key)
        return self.root / key[:2] / key

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).exists()
        except KeyError:
            return False

    def _sig(self, key: str, tag: str, expires: int, ctype: str = "") -> str:
        msg = f"{key}:{tag}:{expires}:{ctype}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def sign(self, key: str, tenant: str, lifetime: int | None = None,
             now: float | None = None, content_type: str | None = None) -> str:
        if lifetime is None:
            lifetime = self.policy(tenant).lifetime
        expires = int((now if now is not None else time.time()) + lifetime)
        tag = tenant[:8]
        ct = f"&ct={quote(content_type, safe='')}" if content_type else ""
        return (f"/storage/{key}?t={tag}&expires={expires}{ct}"
                f"&sig={self._sig(key, tag, expires, content_type or '')}")

    def verify(self, key: str, tag: str, expires: str | None, sig: str | None,
               ctype: str | None = None) -> str | None:
        """None if the URL is valid, else why it is not."""
        if not expires or not sig or not expires.isdigit():
            return "missing or malformed signature"
        if not hmac.compare_digest(self._sig(key, tag, int(expires), ctype or ""), sig):
            return "signature does not match"
        if int(expires) < time.time():
            return "request has expired"
        return None
