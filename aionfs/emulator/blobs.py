"""The emulator's object storage: content-addressed files and presigned URLs.

A presigned URL is `/storage/<key>?t=<tenant>&expires=<unix>&sig=<hmac>`
where the HMAC (SHA-256, a per-data-dir secret) covers the key, the tenant
tag and the expiry, like S3's query signing. The tenant tag only attributes
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
from pathlib import Path

URL_LIFETIME = 3600


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

    def _sig(self, key: str, tag: str, expires: int) -> str:
        msg = f"{key}:{tag}:{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def sign(self, key: str, tenant: str, lifetime: int = URL_LIFETIME,
             now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + lifetime)
        tag = tenant[:8]
        return f"/storage/{key}?t={tag}&expires={expires}&sig={self._sig(key, tag, expires)}"

    def verify(self, key: str, tag: str, expires: str | None, sig: str | None) -> str | None:
        """None if the URL is valid, else why it is not."""
        if not expires or not sig or not expires.isdigit():
            return "missing or malformed signature"
        if not hmac.compare_digest(self._sig(key, tag, int(expires)), sig):
            return "signature does not match"
        if int(expires) < time.time():
            return "request has expired"
        return None
