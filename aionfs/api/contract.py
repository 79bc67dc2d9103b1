"""Check HTTP exchanges against the vendored OpenAPI subset (`spec/`, Apache-2.0).

Two users: the tests, where every request the client sends and every answer
the emulator gives passes through `Contract.check_request` and
`Contract.check_response` (as httpx event hooks), and `aionfs doctor --api`,
which holds the real service's answers to the same spec. Undeclared paths,
undeclared or ill-typed parameters, bodies that break their schema and
answers whose JSON does not match the declared schema for their status all
fail the test. Error answers with a status the operation does not declare
must match one of the API's documented error shapes.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).with_name("spec") / "openapi-subset.json"
BASE = "urn:aion-spec"


class ContractViolation(AssertionError):
    pass


def _rebase(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (BASE + v if k == "$ref" and v.startswith("#") else _rebase(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node


_formats = jsonschema.FormatChecker()


@_formats.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(uuid.UUID(value))


@_formats.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


class Contract:
    def __init__(self, path: Path = SPEC_PATH, prefix: str = "") -> None:
        self.spec = _rebase(json.loads(path.read_text()))
        self.registry = Registry().with_resource(
            BASE, Resource.from_contents(self.spec, default_specification=DRAFT202012))
        self.routes = []
        for template, ops in self.spec["paths"].items():
            rx = re.compile("^" + re.sub(r"\{[^}]+\}", "([^/]+)", template) + "$")
            self.routes.append((rx, template, ops))
        # Literal paths before templated ones (move-files before {folder_id}).
        self.routes.sort(key=lambda r: r[1].count("{"))
        self.checked: dict[tuple[str, str, int], int] = {}

    def validate(self, schema: dict[str, Any], instance: Any, what: str) -> None:
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry,
                                                    format_checker=_formats)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise ContractViolation(f"{what}: {e.message} at {list(e.absolute_path)}")

    def operation(self, method: str, url: str) -> tuple[str, dict[str, Any]]:
        path = urlsplit(url).path
        for rx, template, ops in self.routes:
            if rx.match(path) and method.lower() in ops:
                return template, ops[method.lower()]
        raise ContractViolation(f"{method} {path} is not an operation of the spec")

    # -- requests ----------------------------------------------------------

    def check_request(self, method: str, url: str, content_type: str, body: bytes) -> None:
        template, op = self.operation(method, url)
        what = f"request {method} {template}"
        declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        query: dict[str, list[str]] = {}
        for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            query.setdefault(k, []).append(v)
        for name, values in query.items():
            if name not in declared:
                raise ContractViolation(f"{what}: undeclared query parameter {name!r}")
            schema = declared[name]["schema"]
            self.validate(schema, _coerce(schema, values), f"{what} ?{name}")
        for name, p in declared.items():
            if p.get("required") and name not in query:
                raise ContractViolation(f"{what}: missing required parameter {name!r}")
        rb = op.get("requestBody")
        if rb is None:
            if body:
                raise ContractViolation(f"{what}: a body where none is declared")
            return
        media = content_type.split(";")[0].strip()
        if media not in rb["content"]:
            raise ContractViolation(f"{what}: body type {media!r} not declared")
        schema = rb["content"][media]["schema"]
        if media == "application/json":
            self.validate(schema, json.loads(body), f"{what} body")
        elif media == "multipart/form-data":
            target = self._resolve(schema)
            fields = set(re.findall(rb'form-data; name="([^"]+)"', body))
            props = set(target.get("properties", {}))
            names = {f.decode() for f in fields}
            if names - props:
                raise ContractViolation(f"{what}: undeclared form fields {names - props}")
            if set(target.get("required", [])) - names:
                raise ContractViolation(f"{what}: missing form fields")

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if not ref:
            return schema
        node: Any = self.spec
        for part in ref.split("#", 1)[1].strip("/").split("/"):
            node = node[part]
        return node  # type: ignore[no-any-return]

    # -- responses ---------------------------------------------------------

    def check_response(self, method: str, url: str, status: int, content_type: str,
                       body: bytes) -> None:
        template, op = self.operation(method, url)
        what = f"response {status} to {method} {template}"
        self.checked[(method, template, status)] = self.checked.get(
            (method, template, status), 0) + 1
        declared = op["responses"].get(str(status))
        if status in (301, 302, 303, 307):
            if declared is None:
                raise ContractViolation(f"{what}: redirect not declared")
            return
        doc = json.loads(body) if body and "json" in content_type else None
        if declared is None:
            if status < 400:
                raise ContractViolation(f"{what}: status not declared")
            self._check_error_shape(doc, what)
            return
        schema = declared.get("content", {}).get("application/json", {}).get("schema")
        if schema:
            if doc is None:
                raise ContractViolation(f"{what}: JSON expected, got {content_type!r}")
            self.validate(schema, doc, what)
        elif status >= 400:
            self._check_error_shape(doc, what)

    def _check_error_shape(self, doc: Any, what: str) -> None:
        shapes = [self.spec["x-aionfs-error-envelope"],
                  {"$ref": BASE + "#/components/schemas/UserFilesError"}]
        for shape in shapes:
            try:
                self.validate(shape, doc, what)
                return
            except ContractViolation:
                continue
        raise ContractViolation(f"{what}: body matches no documented error shape: {doc!r}")


def _coerce(schema: dict[str, Any], values: list[str]) -> Any:
    """Query strings are text: read them as the schema's type."""
    types = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
    if "array" in types:
        return values
    raw = values[-1]
    if "integer" in types:
        try:
            return int(raw)
        except ValueError:
            return raw
    if "boolean" in types and raw in ("true", "false"):
        return raw == "true"
    return raw
