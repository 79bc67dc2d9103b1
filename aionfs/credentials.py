"""Where a profile's API key lives: the environment, or a private key file.

`aionfs login` writes `<config dir>/keys/<profile>.key`, mode 0600, in a
directory of mode 0700, atomically (a temporary file renamed into place, so a
crash never leaves half a key). A key file that the group or others can read,
or that belongs to someone else, is refused with the command that fixes it:
a key others could read is a key others may have copied.
`AIONVISION_API_KEY` wins over the file, as every environment variable wins
over the configuration.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .api.settings import ENV_KEY, ApiKey, SettingsError
from .config import config_dir


class CredentialsError(ValueError):
    """No usable key; the message says how to get one in place."""


def key_path(profile: str) -> Path:
    if not profile or "/" in profile or profile.startswith("."):
        raise CredentialsError(f"{profile!r} is not a profile name")
    return config_dir() / "keys" / f"{profile}.key"


def save_key(profile: str, key: ApiKey) -> Path:
    path = key_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, (key.reveal() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def remove_key(profile: str) -> bool:
    try:
        key_path(profile).unlink()
    except FileNotFoundError:
        return False
    return True


def read_key_file(path: Path) -> ApiKey:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CredentialsError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise CredentialsError(
                f"the key file {path} belongs to another user; remove it and run "
                "'aionfs login' again")
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(
                f"the key file {path} can be read by other users "
                f"(mode {stat.filemode(st.st_mode)}); fix it with: chmod 600 {path} "
                "(and consider replacing the key in the Aionvision dashboard)")
        text = os.read(fd, 4096).decode(errors="replace")
    finally:
        os.close(fd)
    try:
        return ApiKey(text)
    except SettingsError as exc:
        raise CredentialsError(f"the key file {path} holds no valid key ({exc}); run "
                               "'aionfs login' again") from None


def find_key(profile: str, environ: dict[str, str] | None = None) -> tuple[ApiKey, str] | None:
    """The key and where it came from ('environment' or the key file), or None."""
    env = os.environ if environ is None else environ
    if env.get(ENV_KEY):
        try:
            return ApiKey(env[ENV_KEY]), "environment"
        except SettingsError as exc:
            raise CredentialsError(f"{ENV_KEY}: {exc}") from None
    path = key_path(profile)
    try:
        return read_key_file(path), str(path)
    except FileNotFoundError:
        return None


def require_key(profile: str, environ: dict[str, str] | None = None) -> ApiKey:
    found = find_key(profile, environ)
    if found is None:
        raise CredentialsError(
            f"no API key for profile {profile!r}: run 'aionfs login"
            f"{'' if profile == 'default' else ' --profile ' + profile}' or set {ENV_KEY} "
            "(never pass it on the command line, where other users can read it)")
    return found[0]
