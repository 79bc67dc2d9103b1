"""Folder endpoints: the tree, contents, create, rename, move, delete, move-files."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .app import Emulator
from .responses import (
    ApiFailure,
    Invalid,
    check_uuid,
    field,
    json_body,
    json_response,
    length,
    q_choice,
    q_int,
)
from .state import FolderError, Tenant


def _folder_or_404(emu: Emulator, tenant: Tenant, folder_id: str) -> dict:
    row = emu.state.folder(tenant, folder_id)
    if row is None:
        raise ApiFailure(404, "FOLDER_NOT_FOUND", "folder not found")
    return emu.state.folder_view(tenant, row)


def _apply(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except FolderError as exc:
        raise ApiFailure(exc.status, exc.code, exc.message) from None


def _name(doc: dict) -> str:
    name = field(doc, "name", str, required=True, check=length(1, 255))
    if "/" in name or "\x00" in name or name.strip() in ("", ".", ".."):
        raise Invalid((["body", "name"], "folder names cannot contain '/' or NUL, "
                       "or be '.' or '..'", "value_error"))
    return name


async def tree(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    return json_response({"folders": emu.state.folder_tree_view(tenant)})


async def contents(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["folder_id"], ["path", "folder_id"])
    q_int(request, "limit", 50, ge=1, le=100)
    q_int(request, "offset", 0, ge=0)
    folder = _folder_or_404(emu, tenant, fid)
    subs = [emu.state.folder_view(tenant, r) for r in emu.state.folders(tenant)
            if r["parent_id"] == fid]
    crumbs = [{"id": a["id"], "name": a["name"], "depth": i}
              for i, a in enumerate(emu.state.ancestors(tenant, fid))]
    return json_response({"folder": folder, "breadcrumbs": crumbs, "subfolders": subs,
                          "total_files": folder["file_count"],
                          "has_more_files": False})


async def create(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    doc = await json_body(request)
    name = _name(doc)
    parent = field(doc, "parent_id", str)
    if parent is not None:
        parent = check_uuid(parent, ["body", "parent_id"])
    fid = _apply(emu.state.create_folder, tenant, name, parent)
    return json_response(_folder_or_404(emu, tenant, fid), 201)


async def rename(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["folder_id"], ["path", "folder_id"])
    name = _name(await json_body(request))
    _apply(emu.state.rename_folder, tenant, fid, name)
    return json_response(_folder_or_404(emu, tenant, fid))


async def move(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["folder_id"], ["path", "folder_id"])
    doc = await json_body(request)
    parent = field(doc, "new_parent_id", str)
    if parent is not None:
        parent = check_uuid(parent, ["body", "new_parent_id"])
    _apply(emu.state.move_folder, tenant, fid, parent)
    return json_response(_folder_or_404(emu, tenant, fid))


async def delete(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["folder_id"], ["path", "folder_id"])
    mode = q_choice(request, "mode", ("move_to_parent", "delete_all"), "move_to_parent")
    files, subs = _apply(emu.state.delete_folder, tenant, fid, mode)
    return json_response({"id": fid, "files_affected": files, "subfolders_affected": subs,
                          "mode": mode})


async def move_files(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    doc = await json_body(request)
    ids = field(doc, "file_ids", list, required=True, check=length(1, 100))
    ids = [check_uuid(i if isinstance(i, str) else "", ["body", "file_ids", n])
           for n, i in enumerate(ids)]
    target = field(doc, "folder_id", str)
    if target is not None:
        target = check_uuid(target, ["body", "folder_id"])
        _folder_or_404(emu, tenant, target)
    moved = emu.state.move_files(tenant, ids, target)
    return json_response({"moved": moved, "total_requested": len(ids)})


ROUTES = [
    ("GET", "/folders", tree, False),
    ("POST", "/folders", create, False),
    ("POST", "/folders/move-files", move_files, False),
    ("GET", "/folders/{folder_id}", contents, False),
    ("PATCH", "/folders/{folder_id}", rename, False),
    ("DELETE", "/folders/{folder_id}", delete, False),
    ("POST", "/folders/{folder_id}/move", move, False),
]
