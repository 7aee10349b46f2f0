"""The emulators' contract check: documented operations only, bodies valid
against the description (a broken body is refused, so the check is real)."""

from __future__ import annotations

import pytest

from sandbox.apispec import ApiSpec, SpecViolation

SWAGGER = {
    "swagger": "2.0",
    "basePath": "/api/v2.0",
    "paths": {
        "/projects": {"get": {"parameters": [{"name": "page", "in": "query"}],
                              "responses": {"200": {"schema": {"type": "array",
                                                               "items": {"$ref": "#/definitions/Project"}}}}}},
        "/projects/new": {"get": {"responses": {"204": {}}}},
        "/projects/{id}": {"get": {"responses": {"200": {"schema": {"$ref": "#/definitions/Project"}}}}},
    },
    "definitions": {"Project": {"type": "object", "properties": {"project_id": {"type": "integer"},
                                                               "owner": {"type": "string", "x-nullable": True}}}},
}
OPENAPI = {
    "openapi": "3.0.3",
    "paths": {"/v2/namespaces/{ns}/repositories": {"get": {"responses": {"200": {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Page"}}}}}}}},
    "components": {"schemas": {"Page": {"type": "object", "required": ["count"], "properties": {
        "count": {"type": "integer"}, "next": {"type": "string", "nullable": True}}}}},
}


def test_documented_operations_are_found_literal_paths_first() -> None:
    spec = ApiSpec(SWAGGER)
    assert spec.operation("GET", "/api/v2.0/projects/7").template == "/projects/{id}"  # type: ignore[union-attr]
    assert spec.operation("get", "/api/v2.0/projects/new").template == "/projects/new"  # type: ignore[union-attr]
    assert spec.operation("delete", "/api/v2.0/projects/7") is None
    with pytest.raises(SpecViolation, match="undocumented query parameter"):
        spec.check_request("get", "/api/v2.0/projects", {"page": 1, "secret_filter": "x"})


def test_valid_bodies_pass_and_broken_ones_are_refused() -> None:
    spec = ApiSpec(SWAGGER)
    spec.check_response("get", "/api/v2.0/projects", 200, [{"project_id": 1, "owner": None}])
    with pytest.raises(SpecViolation, match="project_id"):
        spec.check_response("get", "/api/v2.0/projects", 200, [{"project_id": "one"}])
    with pytest.raises(SpecViolation, match="not documented"):
        spec.check_response("get", "/api/v2.0/projects", 418, None)


def test_openapi3_nullable_and_required() -> None:
    spec = ApiSpec(OPENAPI)
    spec.check_response("get", "/v2/namespaces/acme/repositories", 200, {"count": 0, "next": None})
    with pytest.raises(SpecViolation, match="count"):
        spec.check_response("get", "/v2/namespaces/acme/repositories", 200, {"next": None})


def test_an_external_reference_that_is_not_loaded_is_named() -> None:
    document = {"swagger": "2.0", "paths": {"/r": {"get": {"responses": {"200": {
        "schema": {"$ref": "../common/types.json#/definitions/Resource"}}}}}}}
    with pytest.raises(SpecViolation, match="not loaded"):
        ApiSpec(document).check_response("get", "/r", 200, {})
    extra = {"../common/types.json": {"definitions": {"Resource": {"type": "object", "required": ["id"]}}}}
    ApiSpec(document, extra_documents=extra).check_response("get", "/r", 200, {"id": "x"})
    with pytest.raises(SpecViolation, match="id"):
        ApiSpec(document, extra_documents=extra).check_response("get", "/r", 200, {})


AZURE_STYLE = {
    "swagger": "2.0",
    "paths": {
        "/subscriptions/{subscriptionId}/providers/X/registries": {"get": {
            "parameters": [{"$ref": "../common/types.json#/parameters/SubscriptionIdParameter"},
                           {"$ref": "../common/types.json#/parameters/ApiVersionParameter"}],
            "responses": {"200": {"schema": {"type": "object"}}}}},
        "/{resourceUri}/providers/Y/settings": {"get": {
            "parameters": [{"name": "resourceUri", "in": "path", "required": True, "type": "string",
                            "x-ms-skip-url-encoding": True}],
            "responses": {"200": {"schema": {"type": "object"}}}}},
    },
}
AZURE_COMMON = {"../common/types.json": {"parameters": {
    "SubscriptionIdParameter": {"name": "subscriptionId", "in": "path", "required": True, "type": "string"},
    "ApiVersionParameter": {"name": "api-version", "in": "query", "required": True, "type": "string"},
}}}


def test_query_parameters_documented_in_an_extra_document_are_documented() -> None:
    """Azure's api-version lives in common-types: a request carrying it is documented."""
    spec = ApiSpec(AZURE_STYLE, extra_documents=AZURE_COMMON)
    operation = spec.check_request("get", "/subscriptions/s-1/providers/X/registries", {"api-version": "2025-11-01"})
    assert "api-version" in operation.query_parameters
    with pytest.raises(SpecViolation, match="undocumented query parameter"):
        spec.check_request("get", "/subscriptions/s-1/providers/X/registries", {"$skiptoken": "x"})


def test_a_resource_uri_path_parameter_spans_segments() -> None:
    """`{resourceUri}` marked x-ms-skip-url-encoding is a whole resource id; other parameters stay one segment."""
    spec = ApiSpec(AZURE_STYLE, extra_documents=AZURE_COMMON)
    found = spec.operation("get", "/subscriptions/s/resourceGroups/rg/providers/R/registries/r1/providers/Y/settings")
    assert found is not None and found.template == "/{resourceUri}/providers/Y/settings"
    assert spec.operation("get", "/subscriptions/a/b/providers/X/registries") is None


def test_response_codes_written_as_yaml_integers_are_documented() -> None:
    """Docker Hub's description writes some response codes unquoted (`200:`), which YAML reads as integers."""
    document = {"openapi": "3.0.3", "paths": {"/v2/r/{name}": {"get": {"responses": {200: {"content": {
        "application/json": {"schema": {"type": "object", "required": ["name"]}}}}}}}}}
    spec = ApiSpec(document)
    spec.check_response("get", "/v2/r/app", 200, {"name": "app"})
    with pytest.raises(SpecViolation, match="name"):
        spec.check_response("get", "/v2/r/app", 200, {})
