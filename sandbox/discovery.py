"""A Google API discovery document as the contract an emulator holds itself to.

Google describes its REST APIs in discovery documents, not OpenAPI, so
`sandbox.apispec` cannot read them. This module answers the same three
questions for one:

* `method(http_method, path)`: the documented method a concrete request path is
  (`/v1/projects/p/locations/l/repositories/r:getIamPolicy` ->
  `artifactregistry.projects.locations.repositories.getIamPolicy`), or None;
* `check_request(http_method, path, query)`: the method exists and every query
  parameter is one it (or the API's system parameters) documents;
* `check_response(method_id, body)`: the body validates against the method's
  documented response schema.

Discovery schemas become JSON Schema (draft 7) by `to_json_schema`: `$ref: Name`
points into `definitions`, `type: any` allows anything, int64/uint64 stay strings
(discovery sends 64-bit integers as JSON strings), and properties are optional
unless the document says otherwise — exactly as permissive as the API itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from sandbox.apispec import SpecViolation

# Google's system parameters may also be written with a leading `$` (the SDKs send `$alt`).
_SYSTEM_PREFIX = "$"


@dataclass(frozen=True)
class Method:
    id: str  # artifactregistry.projects.locations.repositories.list
    http_method: str
    flat_path: str
    definition: Mapping[str, Any]

    @property
    def query_parameters(self) -> frozenset[str]:
        params = self.definition.get("parameters", {})
        return frozenset(name for name, p in params.items() if p.get("location") == "query")

    @property
    def response_schema(self) -> str | None:
        ref = self.definition.get("response", {}).get("$ref")
        return str(ref) if ref else None


def to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """One discovery schema (or property) as JSON Schema."""
    if "$ref" in schema:
        return {"$ref": f"#/definitions/{schema['$ref']}"}
    kind = schema.get("type")
    out: dict[str, Any] = {}
    if kind == "object":
        out["type"] = "object"
        if "properties" in schema:
            out["properties"] = {name: to_json_schema(p) for name, p in schema["properties"].items()}
        if "additionalProperties" in schema:
            out["additionalProperties"] = to_json_schema(schema["additionalProperties"])
    elif kind == "array":
        out["type"] = "array"
        if "items" in schema:
            out["items"] = to_json_schema(schema["items"])
    elif kind in ("string", "boolean", "number"):
        out["type"] = kind
    elif kind == "integer":
        out["type"] = "integer"
    elif kind not in (None, "any"):
        raise ValueError(f"unknown discovery type {kind!r}")
    if "enum" in schema:
        out["enum"] = list(schema["enum"])
    return out


class DiscoveryDocument:
    """One committed discovery document (JSON)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.methods = tuple(_methods(document.get("resources", {})))
        self._routes = sorted(
            ((_route(m.flat_path), m) for m in self.methods),
            key=lambda r: (r[1].flat_path.count("{"), -len(r[1].flat_path)),
        )
        self.system_parameters = frozenset(document.get("parameters", {}))

    @classmethod
    def load(cls, path: Path) -> DiscoveryDocument:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    @cached_property
    def definitions(self) -> dict[str, Any]:
        return {name: to_json_schema(s) for name, s in self.document.get("schemas", {}).items()}

    def method(self, http_method: str, path: str) -> Method | None:
        relative = path.lstrip("/")
        for pattern, method in self._routes:
            if method.http_method == http_method.upper() and pattern.fullmatch(relative):
                return method
        return None

    def check_request(self, http_method: str, path: str, query: Mapping[str, Any] | None = None) -> Method:
        method = self.method(http_method, path)
        if method is None:
            raise SpecViolation(f"{http_method.upper()} {path} is not a documented method")
        allowed = method.query_parameters | self.system_parameters
        unknown = sorted(k for k in (query or {}) if k.removeprefix(_SYSTEM_PREFIX) not in allowed)
        if unknown:
            raise SpecViolation(f"{method.id}: undocumented query parameter(s) {unknown}")
        return method

    def check_response(self, method: Method, body: Any) -> None:
        name = method.response_schema
        if name is None:
            if body not in (None, {}):
                raise SpecViolation(f"{method.id}: documents no response body")
            return
        self.check_schema(name, body, where=method.id)

    def check_schema(self, name: str, body: Any, where: str = "") -> None:
        if name not in self.definitions:
            raise SpecViolation(f"{where}: the document has no schema {name!r}")
        schema = {"$ref": f"#/definitions/{name}", "definitions": self.definitions}
        errors = sorted(Draft7Validator(schema).iter_errors(body), key=lambda e: len(list(e.absolute_path)))
        if errors:
            location = "/".join(str(p) for p in errors[0].absolute_path) or "(body)"
            raise SpecViolation(f"{where or name}: {location}: {errors[0].message[:300]}")


def _methods(resources: Mapping[str, Any]) -> list[Method]:
    found: list[Method] = []
    for resource in resources.values():
        for definition in resource.get("methods", {}).values():
            flat = definition.get("flatPath") or definition["path"]
            found.append(Method(definition["id"], definition["httpMethod"], flat, definition))
        found.extend(_methods(resource.get("resources", {})))
    return found


def _route(flat_path: str) -> re.Pattern[str]:
    """`v1/projects/{projectsId}/x:verb` -> a regex; an id never spans `/` or `:`
    so `repositories/r:getIamPolicy` is not mistaken for `repositories/{id}`."""
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/:]+", re.escape(flat_path)))
