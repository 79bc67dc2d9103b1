"""How library objects are named on the mount (pure functions, no I/O).

Rules (docs/store-and-sync.md, "Names"):

* a file is named by its title if set, else its original filename, keeping
  the real extension (appended when the title lacks it); a saved link is
  `<title or domain>.desktop`;
* names are made safe: `/` becomes `／` (U+FF0F, as rclone encodes it), NUL is
  dropped, other control characters become spaces, unpaired surrogates
  become U+FFFD, the names `.` and `..` get a `_` prefix (an empty one is
  `untitled`), and
  names are cut to 255 bytes of UTF-8 (at a character boundary, keeping the
  extension);
* clashes within one directory are resolved by `assign`: the oldest object
  (created_at, then id) keeps the plain name, others get ` (<first 8 hex of
  their id>)` before the extension; names already given stay as long as
  the object's desired name is unchanged, so a name never changes unless
  the object's own metadata does;
* at the root, the names of the virtual folders (`search`, `text`, `colors`,
  `tags`, `by-date`) are taken: a folder or file with one of those names is
  shown with its id suffix, e.g. `search (1a2b3c4d)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_NAME_BYTES = 255
VIRTUAL_ROOT_NAMES = frozenset({"search", "text", "colors", "tags", "by-date"})

_FORMAT_EXT = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif", "pdf": ".pdf",
               "docx": ".docx", "txt": ".txt", "md": ".md"}
_EXT_ALIASES = {".jpeg": "jpeg", ".jpg": "jpeg", ".jpe": "jpeg", ".png": "png", ".webp": "webp",
                ".gif": "gif", ".pdf": "pdf", ".docx": "docx", ".txt": "txt", ".md": "md",
                ".markdown": "md"}


def _clean(text: str) -> str:
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") \
        if any("\ud800" <= c <= "\udfff" for c in text) else text
    out = []
    for ch in text:
        if ch == "/":
            out.append("／")
        elif ch == "\x00":
            continue
        elif ch < " " or ch == "\x7f":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out).strip()


def _truncate(stem: str, ext: str) -> str:
    budget = MAX_NAME_BYTES - len(ext.encode())
    raw = stem.encode()
    if len(raw) > budget:
        stem = raw[:budget].decode("utf-8", "ignore").rstrip()
    return stem + ext


def split_ext(name: str) -> tuple[str, str]:
    """('photo', '.jpg'); names without a real extension keep it all as stem."""
    suffix = PurePosixPath(name).suffix
    if not suffix or suffix == name or len(suffix) > 12 or " " in suffix:
        return name, ""
    return name[: -len(suffix)], suffix


def safe_name(name: str, ext: str = "") -> str:
    """A valid, ≤ 255-byte name from any text (see the module rules)."""
    stem = _clean(name)
    if stem + ext in ("", ".", ".."):
        stem = "_" + stem if stem else "untitled"
    return _truncate(stem, ext)


def real_extension(filename: str | None, fmt: str | None) -> str:
    """The extension the bytes deserve: the filename's if it matches the format."""
    ext = split_ext(filename or "")[1]
    if fmt in _FORMAT_EXT:
        if _EXT_ALIASES.get(ext.lower()) == fmt:
            return ext
        return _FORMAT_EXT[fmt]
    return ext


def file_name(title: str | None, filename: str | None, fmt: str | None,
              media_type: str | None, domain: str | None = None) -> str:
    """The desired (unsuffixed) name of a file on the mount."""
    if media_type == "link":
        return safe_name(title or domain or "link", ".desktop")
    ext = real_extension(filename, fmt)
    base = title.strip() if title and title.strip() else (filename or "")
    stem, own = split_ext(base)
    if own and (own.lower() == ext.lower() or (fmt and _EXT_ALIASES.get(own.lower()) == fmt)
                or not ext):
        base, ext = stem, own  # the name already carries a fitting extension: keep its case
    return safe_name(base, ext)


def folder_name(name: str) -> str:
    return safe_name(name)


def suffixed(name: str, object_id: str, length: int = 8) -> str:
    stem, ext = split_ext(name)
    # (cleaned as names are: an id is opaque text, and one not a UUID may hold a "/")
    tag = f" ({_clean(object_id.replace('-', ''))[:length]})"
    return _truncate(stem, tag + ext) if stem else _truncate(name, tag)


@dataclass(frozen=True)
class Child:
    """One object to be named in a directory."""

    inode: int
    desired: str
    created_at: str
    object_id: str


def assign(children: Iterable[Child], reserved: frozenset[str] = frozenset()) -> dict[int, str]:
    """Names for every child: the oldest (upload time, then id) of those that want
    a name gets it plain, the others suffixed with their id.

    The names are a function of the directory's members alone, never of the
    order in which they were learned: every client shows the same file under
    the same name (two workstations that saved `doc.md` at once both show the
    earlier upload as `doc.md`), and a name changes only when a file's own
    metadata or the membership of its directory does (the plain holder goes:
    the next oldest takes the name; an older namesake moves in: it takes it).
    """
    ordered = sorted(children, key=lambda c: (c.created_at, c.object_id))
    taken = set(reserved)
    result: dict[int, str] = {}
    for c in ordered:
        name = c.desired
        length = 8
        while name in taken:
            name = suffixed(c.desired, c.object_id, length)
            length += 4
            if length > 40:  # ids are unique: only a pathological title gets here
                name = suffixed(c.desired, f"{c.object_id}{c.inode}", length)
        result[c.inode] = name
        taken.add(name)
    return result
