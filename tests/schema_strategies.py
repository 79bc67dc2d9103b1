"""Hypothesis strategies for what a JSON schema of the vendored spec allows.

Written here rather than taken from hypothesis-jsonschema, whose last release
does not run on the pinned hypothesis. It covers what the spec's response
schemas use ($ref, anyOf/oneOf/allOf, enum, const, objects, arrays, strings
with the date-time and uuid formats, numbers, booleans, null) and adds what
the spec leaves open: optional fields absent, unknown extra fields, long and
unicode strings, big numbers, dates with and without a zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)

_DATES = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1))


def _date_time() -> st.SearchStrategy[str]:
    zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                             timezone(timedelta(hours=-8))])
    return st.one_of(
        _DATES.map(lambda d: d.isoformat()),  # no zone
        st.builds(lambda d, z: d.replace(tzinfo=z).isoformat(), _DATES, zones),
        _DATES.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
        _DATES.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
    )


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date-time":
        return _date_time()
    if fmt == "uuid":
        return st.uuids().map(str)
    low, high = schema.get("minLength", 0), schema.get("maxLength", 300)
    return st.text(min_size=low, max_size=min(high, 300))


class Schemas:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.spec
        for part in ref.split("#", 1)[1].strip("/").split("/"):
            node = node[part]
        return node  # type: ignore[no-any-return]

    def strategy(self, schema: dict[str, Any], extra_fields: bool = True,
                 depth: int = 0) -> st.SearchStrategy[Any]:
        if "$ref" in schema:
            return self.strategy(self._resolve(schema["$ref"]), extra_fields, depth)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return st.one_of([self.strategy(s, extra_fields, depth) for s in schema[key]])
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                part = self._resolve(part["$ref"]) if "$ref" in part else part
                merged = {**merged, **part,
                          "properties": {**merged.get("properties", {}),
                                         **part.get("properties", {})},
                          "required": [*merged.get("required", []), *part.get("required", [])]}
            return self.strategy(merged, extra_fields, depth)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self.strategy({**schema, "type": k}, extra_fields, depth)
                              for k in kind])
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, extra_fields, depth)
        if kind == "array":
            items = schema.get("items", {})
            return st.lists(self.strategy(items, extra_fields, depth + 1),
                            max_size=3 if depth < 2 else 1)
        if kind == "string":
            return _string(schema)
        if kind == "integer":
            return st.integers(min_value=schema.get("minimum", -(2**53)),
                               max_value=schema.get("maximum", 2**53))
        if kind == "number":
            return st.floats(min_value=schema.get("minimum"), max_value=schema.get("maximum"),
                             allow_nan=False, allow_infinity=False) | st.integers(0, 10**12)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return JSON  # (no type: anything)

    def _object(self, schema: dict[str, Any], extra_fields: bool,
                depth: int) -> st.SearchStrategy[dict[str, Any]]:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = st.fixed_dictionaries(
            {k: self.strategy(v, extra_fields, depth + 1) for k, v in props.items()
             if k in required},
            optional={k: self.strategy(v, extra_fields, depth + 1) for k, v in props.items()
                      if k not in required})
        more = schema.get("additionalProperties", True)
        if not extra_fields or more is False:
            return fixed
        values = JSON if more is True else self.strategy(more, extra_fields, depth + 1)
        names = ["x_new_field", "futureFlag", "meta", "_links"] if props else \
            ["a", "key 2", "ünï", "0"]  # (a map: any key, values as declared)
        extra = st.dictionaries(st.sampled_from(names), values, max_size=2)
        return st.builds(lambda known, more: {**more, **known}, fixed, extra)
