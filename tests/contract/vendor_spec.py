"""Vendor the part of the Aionvision OpenAPI spec that aionfs uses.

    python tests/contract/vendor_spec.py ../shared/aionvision-api

Writes `aionfs/api/spec/openapi-subset.json` (the operations below and every
schema they reference, unchanged) and copies the spec's Apache-2.0 LICENSE
beside it (the package ships both: `aionfs doctor --api` checks answers).
The error envelope of the API reference's prose (README "Error Format") has
no schema in the spec; it is added as `x-aionfs-error-envelope` so that the
tests can check undeclared error answers too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

OPERATIONS = [
    ("get", "/api/v2/folders"), ("post", "/api/v2/folders"),
    ("get", "/api/v2/folders/{folder_id}"), ("patch", "/api/v2/folders/{folder_id}"),
    ("delete", "/api/v2/folders/{folder_id}"), ("post", "/api/v2/folders/{folder_id}/move"),
    ("post", "/api/v2/folders/move-files"), ("get", "/api/v2/usage/summary"),
    ("get", "/api/v2/user-files"), ("get", "/api/v2/user-files/{image_id}"),
    ("patch", "/api/v2/user-files/{image_id}"), ("delete", "/api/v2/user-files/{image_id}"),
    ("post", "/api/v2/user-files/batch-delete"), ("post", "/api/v2/user-files/links"),
    ("get", "/api/v2/user-files/{image_id}/download"),
    ("get", "/api/v2/user-files/{image_id}/variant/{variant_type}"),
    ("post", "/api/v2/user-files/upload/stream"),
    ("post", "/api/v2/user-files/upload/stream-batch"),
    ("get", "/api/v2/uploads/sessions/{session_id}/status"),
    ("get", "/api/v2/uploads/sessions/{session_id}/results"),
    ("post", "/api/v2/uploads/check-duplicates"), ("get", "/api/v2/uploads/quota-check"),
    ("get", "/api/v2/colors/families"), ("get", "/api/v2/colors/images/{image_id}"),
    ("post", "/api/v2/colors/search"), ("post", "/api/v2/agents/search/images"),
    ("get", "/api/v2/documents/{document_id}/text"),
]

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "details": {}},
        },
        "request_id": {"type": "string"},
    },
}


def refs(node: object) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.add(v.rsplit("/", 1)[1])
            else:
                out |= refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= refs(v)
    return out


def main(src_dir: str) -> None:
    src = Path(src_dir)
    raw = (src / "openapi.json").read_bytes()
    spec = json.loads(raw)
    paths: dict[str, dict] = {}
    for method, path in OPERATIONS:
        paths.setdefault(path, {})[method] = spec["paths"][path][method]
    schemas = spec["components"]["schemas"]
    todo, keep = refs(paths), set()
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo |= refs(schemas[name])
    subset = {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "x-vendored-from": "shared/aionvision-api/openapi.json",
                 "x-source-sha256": hashlib.sha256(raw).hexdigest(),
                 "x-license": "Apache-2.0 (see LICENSE beside this file)"},
        "paths": paths,
        "components": {"schemas": {k: schemas[k] for k in sorted(keep)},
                       "securitySchemes": spec["components"].get("securitySchemes", {})},
        "x-aionfs-error-envelope": ERROR_ENVELOPE,
    }
    here = Path(__file__).parent
    out = here.parent.parent / "aionfs" / "api" / "spec"
    (out / "openapi-subset.json").write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n")
    shutil.copyfile(src / "LICENSE", out / "LICENSE")
    print(f"vendored {len(OPERATIONS)} operations and {len(keep)} schemas")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/aionvision-api")
