"""Upstream API descriptions (Swagger 2.0 / OpenAPI 3.x) as the contract the
sandbox emulators and the contract tests hold themselves to.

An emulator of a service that cannot run here (Harbor, ACR, GitHub, Docker
Hub) serves only documented operations and only response bodies that are
valid against the committed upstream description; the collectors' requests
are checked against the same description. `ApiSpec` answers three questions:

* `operation(method, path)`: which documented operation a concrete request
  path is (`/projects/7/repositories` -> `/projects/{project_name}/repositories`);
  None for an undocumented one;
* `check_request(method, path, query)`: the operation exists and every query
  parameter is one it documents (raises `SpecViolation`);
* `check_response(method, path, status, body)`: the body validates against the
  schema documented for that status (raises `SpecViolation`).

Schemas are validated with `jsonschema`, `$ref`s resolved inside the document
itself through `referencing` (no copying, no network). OpenAPI 3.0's
`nullable: true` becomes a JSON-schema type union before validation; Swagger's
`x-nullable` likewise. Everything a spec says is data; nothing is executed.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, Draft7Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT4, DRAFT7, DRAFT202012

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})
_SPEC_URI = "urn:regguard:spec"
_EXTRA_URI = "urn:regguard:extra:"


class SpecViolation(AssertionError):
    """A request or response the upstream description does not allow."""


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # the documented path, e.g. /projects/{project_name_or_id}
    pointer: str  # JSON pointer of the operation object in the spec
    definition: Mapping[str, Any]

    @property
    def query_parameters(self) -> frozenset[str]:
        return frozenset(p["name"] for p in self.definition.get("_parameters", ()) if p.get("in") == "query")


class ApiSpec:
    """One upstream description, loaded from a committed file (JSON or YAML)."""

    def __init__(
        self,
        document: Mapping[str, Any],
        base_path: str | None = None,
        extra_documents: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """`extra_documents`: the files the description's external `$ref`s name
        (Azure's `../common-types/.../types.json`), by the name as written."""
        self.document = _external_refs_as_urns(_with_nullable_types(_string_keys(copy.deepcopy(dict(document)))))
        self.extra_documents = {
            name: _with_nullable_types(copy.deepcopy(dict(doc))) for name, doc in (extra_documents or {}).items()
        }
        self.swagger2 = str(self.document.get("swagger", "")).startswith("2")
        self.base_path = (base_path if base_path is not None else self.document.get("basePath", "")).rstrip("/")
        self._routes = self._compile_routes()

    @classmethod
    def load(
        cls, path: Path, base_path: str | None = None, extra_documents: Mapping[str, Path] | None = None
    ) -> ApiSpec:
        extras = {name: _read(file) for name, file in (extra_documents or {}).items()}
        return cls(_read(path), base_path, extras)

    # ---- operations ---------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation | None:
        """The documented operation a request for `path` (with or without the
        base path, without the query string) is; None when undocumented."""
        method = method.lower()
        relative = path[len(self.base_path) :] if self.base_path and path.startswith(self.base_path) else path
        for pattern, template in self._routes:
            if pattern.fullmatch(relative):
                item = self.document["paths"][template]
                if method in item:
                    return self._operation(method, template, item)
        return None

    def check_request(self, method: str, path: str, query: Mapping[str, Any] | None = None) -> Operation:
        operation = self.operation(method, path)
        if operation is None:
            raise SpecViolation(f"{method.upper()} {path} is not a documented operation")
        unknown = sorted(set(query or {}) - operation.query_parameters)
        if unknown:
            raise SpecViolation(f"{method.upper()} {operation.template}: undocumented query parameter(s) {unknown}")
        return operation

    def check_response(self, method: str, path: str, status: int, body: Any) -> None:
        """Raise SpecViolation unless `body` is what the operation documents for `status`."""
        operation = self.check_request(method, path)
        pointer = self._response_schema_pointer(operation, status)
        if pointer is None:
            if body not in (None, b"", ""):
                documented = sorted(str(k) for k in operation.definition.get("responses", {}))
                raise SpecViolation(f"{operation.template}: no body documented for {status} (documented: {documented})")
            return
        self.check_schema_at(pointer, body, where=f"{method.upper()} {operation.template} {status}")

    def check_schema(self, name: str, body: Any) -> None:
        """Validate against a named schema (`definitions/X` or `components/schemas/X`)."""
        section = "definitions" if self.swagger2 else "components/schemas"
        self.check_schema_at(f"/{section}/{name}", body, where=name)

    def check_schema_at(self, pointer: str, body: Any, where: str) -> None:
        validator = self._validator_class({"$ref": f"{_SPEC_URI}#{pointer}"}, registry=self._registry)
        try:
            error = _best_error(validator, body)
        except Unresolvable as exc:
            raise SpecViolation(f"{where}: the description refers to {exc.ref}, which is not loaded") from None
        if error is not None:
            location = "/".join(str(p) for p in error.absolute_path) or "(body)"
            raise SpecViolation(f"{where}: {location}: {error.message[:300]}")

    # ---- internals ----------------------------------------------------------

    def _operation(self, method: str, template: str, item: Mapping[str, Any]) -> Operation:
        definition = dict(item[method])
        shared = [self._deref(p) for p in item.get("parameters", ())]
        own = [self._deref(p) for p in definition.get("parameters", ())]
        definition["_parameters"] = shared + own
        pointer = f"/paths/{_escape(template)}/{method}"
        return Operation(method, template, pointer, definition)

    def _response_schema_pointer(self, operation: Operation, status: int) -> str | None:
        responses = operation.definition.get("responses", {})
        key = next((k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
        if key is None:
            raise SpecViolation(f"{operation.template}: status {status} is not documented")
        base = f"{operation.pointer}/responses/{key}"
        response = self._deref(responses[key])
        if "$ref" in responses[key]:
            base = responses[key]["$ref"].removeprefix("#")
        if self.swagger2:
            return f"{base}/schema" if "schema" in response else None
        content = response.get("content", {})
        media = next((m for m in content if "json" in m), None)
        if media is None or "schema" not in content[media]:
            return None
        return f"{base}/content/{_escape(media)}/schema"

    def _deref(self, node: Any) -> Any:
        """Local refs and refs into the extra documents (Azure's common-types parameters)."""
        while isinstance(node, Mapping) and "$ref" in node:
            ref = str(node["$ref"])
            if ref.startswith("#/"):
                node = self._resolve_pointer(ref[1:])
            elif ref.startswith(_EXTRA_URI) and "#/" in ref:
                name, _, pointer = ref[len(_EXTRA_URI) :].partition("#")
                node = self._resolve_pointer(pointer, self.extra_documents[name])
            else:
                break
        return node

    def _resolve_pointer(self, pointer: str, document: Any = None) -> Any:
        node: Any = self.document if document is None else document
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _compile_routes(self) -> list[tuple[re.Pattern[str], str]]:
        """Templates as regexes, literal ones first so `/projects/new` never
        matches `/projects/{id}` when both are documented."""
        routes = []
        for template, item in self.document.get("paths", {}).items():
            spans = self._multi_segment_parameters(item)
            regex = re.sub(
                r"\\\{([^}/]+)\\\}",
                lambda m, spans=spans: ".+" if m.group(1) in spans else "[^/]+",
                re.escape(template),
            )
            routes.append((re.compile(regex), template))
        return sorted(routes, key=lambda r: (r[1].count("{"), -len(r[1])))

    def _multi_segment_parameters(self, item: Mapping[str, Any]) -> set[str]:
        """Path parameters Azure marks `x-ms-skip-url-encoding` (a `{resourceUri}` is a
        whole resource id, slashes and all)."""
        names = set()
        for operation in [item, *(v for k, v in item.items() if k in HTTP_METHODS)]:
            for parameter in operation.get("parameters", ()):
                resolved = self._deref(parameter)
                if resolved.get("in") == "path" and resolved.get("x-ms-skip-url-encoding"):
                    names.add(str(resolved["name"]))
        return names

    @cached_property
    def _validator_class(self) -> Any:
        if self.swagger2:
            return Draft4Validator
        return Draft202012Validator if str(self.document.get("openapi", "")).startswith("3.1") else Draft7Validator

    @cached_property
    def _registry(self) -> Registry[Any]:
        specification = {Draft4Validator: DRAFT4, Draft7Validator: DRAFT7}.get(self._validator_class, DRAFT202012)
        resources = [(_SPEC_URI, Resource(contents=self.document, specification=specification))]
        resources += [
            (_EXTRA_URI + name, Resource(contents=doc, specification=specification))
            for name, doc in self.extra_documents.items()
        ]
        return Registry().with_resources(resources)


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def _external_refs_as_urns(node: Any) -> Any:
    """`other.json#/definitions/X` -> `urn:regguard:extra:other.json#/definitions/X`, so
    it resolves to the extra document registered under that name."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#") and not ref.startswith("urn:"):
            node["$ref"] = _EXTRA_URI + ref
        for key, value in node.items():
            if key != "$ref":
                node[key] = _external_refs_as_urns(value)
    elif isinstance(node, list):
        return [_external_refs_as_urns(v) for v in node]
    return node


def _string_keys(node: Any) -> Any:
    """Mapping keys as strings: YAML reads an unquoted response code (`200:`)
    as an integer, while JSON pointers and status lookups use text."""
    if isinstance(node, dict):
        return {str(k): _string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_string_keys(v) for v in node]
    return node


def _best_error(validator: Any, body: Any) -> ValidationError | None:
    errors = sorted(validator.iter_errors(body), key=lambda e: len(list(e.absolute_path)))
    return errors[0] if errors else None


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _with_nullable_types(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` / Swagger `x-nullable: true` -> `null` allowed."""
    if isinstance(node, dict):
        for key, value in list(node.items()):
            node[key] = _with_nullable_types(value)
        if node.get("nullable") is True or node.get("x-nullable") is True:
            kind = node.get("type")
            if isinstance(kind, str):
                node["type"] = [kind, "null"]
            elif "$ref" in node or "allOf" in node or "oneOf" in node or "anyOf" in node:
                return {"anyOf": [{k: v for k, v in node.items() if k not in ("nullable", "x-nullable")},
                                  {"type": "null"}]}
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        return node
    if isinstance(node, list):
        return [_with_nullable_types(v) for v in node]
    return node
