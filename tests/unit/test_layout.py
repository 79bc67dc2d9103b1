"""The rooms of docs/architecture.md, held: who may run SQL, who may import pyfuse3,
and that the packages below the mount do not reach up into it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "aionfs"


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(PACKAGE)): ast.parse(p.read_text())
            for p in PACKAGE.rglob("*.py")}


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_sql_runs_only_in_the_store_and_the_journal() -> None:
    allowed = ("store/", "upload/journal.py", "emulator/")  # (the emulator is the service)
    offenders = []
    for name, tree in _modules().items():
        if name.startswith(allowed):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "db"
                    and isinstance(node.ctx, ast.Load)):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == [], "Store.db used outside store/: " + ", ".join(offenders)


def test_pyfuse3_is_imported_by_the_adapter_and_the_daemon_only() -> None:
    importers = {name for name, tree in _modules().items()
                 if any(i == "pyfuse3" or i.startswith("pyfuse3.") for i in _imports(tree))}
    assert importers <= {"fs/ops.py"}, importers


def test_the_layers_below_the_mount_do_not_import_it() -> None:
    """API client, store, sync, cache, uploads and views know nothing of the FUSE
    adapter, the daemon or the command line (the FUSE-free fs.view model is fine)."""
    below = ("api/", "store/", "sync/", "cache/", "upload/", "views/")
    above = ("..fs.ops", "..daemon", "..cli", "..cliargs")
    for name, tree in _modules().items():
        if name.startswith(below):
            up = {i for i in _imports(tree) if i.startswith(above)}
            assert not up, f"{name} imports {up}"


#: package → the aionfs packages (or fs modules) it may import, as each package's
#: __init__ docstring says; the daemon and the command line may import everything
ALLOWED = {
    "api": {"vendor"},
    "store": set(),  # (and, like every package, the shared modules in SHARED)
    "sync": {"api", "store"},
    "cache": {"api", "store"},
    "upload": {"api", "store", "sync"},
    "views": {"api", "store", "sync", "fs.view"},
    "thumbs": {"api", "store", "fs.view"},
    "fs": {"api", "cache", "store", "sync", "thumbs", "upload", "views"},
    "watch": {"api", "config", "store", "sync", "upload", "fs.local", "fs.view", "fs.writer"},
    "emulator": set(),
}

#: modules any package may use: callbacks.py (Signal), filepool.py (files made ahead)
SHARED = {"callbacks", "filepool"}


def _targets(name: str, tree: ast.Module) -> set[str]:
    """The aionfs packages a module imports (fs modules by name)."""
    parts = Path(name).parts
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = list(parts[:-1])[:len(parts) - node.level]
        path = base + (node.module.split(".") if node.module else [node.names[0].name])
        if path and path[0] != parts[0]:
            found.add("fs." + path[1] if path[0] == "fs" and len(path) > 1 else path[0])
    return found


def test_each_package_imports_only_what_its_docstring_allows() -> None:
    for name, tree in _modules().items():
        package = Path(name).parts[0]
        if package in ALLOWED:
            extra = _targets(name, tree) - ALLOWED[package] - SHARED
            assert not extra, f"{name} imports {extra}"
