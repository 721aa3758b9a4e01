"""OpenAPI 3.1 document built from route declarations; pydantic generates every schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from kernel.routing import Route, path_parameters

REF = "#/components/schemas/{model}"
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}
_CONVERTOR_SCHEMAS = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}
_STANDARD_PROBLEMS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "The caller lacks the route's permission",
    404: "Not found",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Request failed validation",
    503: "A backing service is unavailable",
}


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_allows_null(option) for option in schema.get("anyOf", []) + schema.get("oneOf", []))


class _GenerateJsonSchema(GenerateJsonSchema):
    """pydantic's generator, minus ``default: null`` on fields that do not accept null: PATCH models
    use ``None`` as "not given", and documenting it as a default would make the schema invalid."""

    def default_schema(self, schema: Any) -> dict[str, Any]:
        json_schema = super().default_schema(schema)
        if "default" in json_schema and json_schema["default"] is None and not _allows_null(json_schema):
            del json_schema["default"]
        return json_schema


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
    }


def build_openapi(routes: Sequence[tuple[str, Route]], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI document for ``[(plugin, route)]`` (routes declared ``in_openapi=False`` left out)."""
    routes = [(plugin, route) for plugin, route in routes if route.in_openapi]
    inputs = []
    for index, (_, route) in enumerate(routes):
        for kind, model, mode in (
            ("body", route.body, "validation"),
            ("query", route.query, "validation"),
            ("response", route.response, "serialization"),
        ):
            if model is not None:
                inputs.append(((index, kind), mode, TypeAdapter(model).core_schema))
        for media, model in (route.body_content or {}).items():
            if not isinstance(model, dict):
                inputs.append(((index, f"body {media}"), "validation", TypeAdapter(model).core_schema))
    generator = _GenerateJsonSchema(ref_template=REF)
    schema_of, definitions = generator.generate_definitions(inputs) if inputs else ({}, {})
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA, **definitions}

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return schemas[ref.rsplit("/", 1)[-1]] if ref else schema

    paths: dict[str, dict[str, Any]] = {}
    for index, (plugin, route) in enumerate(routes):
        template = route.path
        parameters: list[dict[str, Any]] = []
        for name, convertor in path_parameters(route.path):
            template = template.replace(f"{{{name}:{convertor}}}", f"{{{name}}}")
            parameters.append(
                {"name": name, "in": "path", "required": True, "schema": _CONVERTOR_SCHEMAS.get(convertor, {})}
            )
        if route.query is not None:
            query = resolve(schema_of[((index, "query"), "validation")])
            required = set(query.get("required", []))
            for name, prop in query.get("properties", {}).items():
                param = {"name": name, "in": "query", "required": name in required, "schema": prop}
                if "description" in prop:
                    param["description"] = prop["description"]
                parameters.append(param)
        responses: dict[str, Any] = {}
        success: dict[str, Any] = {"description": route.summary or "Success"}
        if route.response is not None:
            success["content"] = {route.media_type: {"schema": schema_of[((index, "response"), "serialization")]}}
        elif route.status_code != 204:
            success["content"] = {route.media_type: {"schema": {}}}
        for media, schema in (route.response_content or {}).items():
            success.setdefault("content", {})[media] = {"schema": schema}
        responses[str(route.status_code)] = success
        statuses = dict(route.problems)
        if route.body is not None:
            statuses.update({s: _STANDARD_PROBLEMS[s] for s in (400, 413, 415, 422)})
        if route.query is not None:
            statuses.setdefault(422, _STANDARD_PROBLEMS[422])
            if "cursor" in route.query.model_fields:
                statuses.setdefault(400, "Malformed request (a cursor this API did not return)")
        if not route.public:
            statuses.update({s: _STANDARD_PROBLEMS[s] for s in (401, 403)})
        if parameters and any(p["in"] == "path" for p in parameters):
            statuses.setdefault(404, _STANDARD_PROBLEMS[404])
        for status in sorted(statuses):
            responses[str(status)] = _problem(statuses[status])
        operation: dict[str, Any] = {
            "operationId": route.name or f"{plugin}_{route.endpoint.__name__}",
            "tags": list(route.tags) or [plugin],
            "responses": responses,
            "x-plugin": plugin,
        }
        if route.summary:
            operation["summary"] = route.summary
        if route.description:
            operation["description"] = route.description
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of[((index, "body"), "validation")]}},
            }
        elif route.body_content:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    media: {
                        "schema": model
                        if isinstance(model, dict)
                        else schema_of[((index, f"body {media}"), "validation")]
                    }
                    for media, model in route.body_content.items()
                },
            }
        if route.public:
            operation["security"] = []
        else:
            operation["security"] = [{"bearerAuth": []}]
            operation["x-permission"] = route.permission
        for method in route.methods:
            op = dict(operation)
            if len(route.methods) > 1:
                op["operationId"] = f"{operation['operationId']}_{method.lower()}"
            paths.setdefault(template, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A session access token (JWT) or an API token (td_…)",
                }
            },
        },
        "security": [{"bearerAuth": []}],
    }
