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
import re
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
    examples = response_examples(src / "api")
    (here / "examples.json").write_text(json.dumps(examples, indent=1, ensure_ascii=False)
                                        + "\n")
    shutil.copyfile(src / "LICENSE", here / "LICENSE")
    print(f"vendored {len(OPERATIONS)} operations, {len(keep)} schemas and "
          f"{len(examples)} response examples")


def response_examples(api_dir: Path) -> list[dict[str, str]]:
    """The JSON response examples of the reference's prose (`## METHOD /path` headings,
    then `**Response** `200`` and a json block), for the operations aionfs uses; they
    go to `examples.json` beside this file, with the reference's license."""
    used = {(m.upper(), p.removeprefix("/api/v2")) for m, p in OPERATIONS}
    out = []
    for md in sorted(api_dir.glob("*.md")):
        lines = md.read_text().splitlines()
        endpoint, status, i = None, None, 0
        while i < len(lines):
            line = lines[i]
            if (h := re.match(r"^#{2,3} (GET|POST|PATCH|PUT|DELETE) (/\S+)", line)):
                endpoint, status = (h[1], h[2]), None
            elif (r := re.match(r"^\*\*Response\*\*\s*`?(\d{3})", line)):
                status = r[1]
            elif line.startswith("```json") and endpoint and status:
                end = lines.index("```", i + 1)
                method, path = endpoint
                template = re.sub(r"\{[^}]+\}", "{}", path)
                if any(m == method and re.sub(r"\{[^}]+\}", "{}", p) == template
                       for m, p in used):
                    out.append({"source": md.name, "method": method, "path": path,
                                "status": status, "body": "\n".join(lines[i + 1:end])})
                status, i = None, end
            i += 1
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/aionvision-api")
