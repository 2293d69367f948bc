"""OpenAPI schema generation (drf-spectacular) that describes what the server really sends.

Views declare their payload serializers as usual; :class:`EnvelopeAutoSchema`
adds, once for every operation:

- the success envelope around 2xx bodies (lists are already enveloped by the
  pagination class's own schema),
- every error status the operation can answer, each with the error envelope,
- the conditional-request and idempotency headers, and the response headers
  (``X-Request-ID``, ``ETag``, ``Retry-After``, ``Idempotent-Replayed``).
"""

import copy

from django_filters import rest_framework as django_filters
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from .batch import FAILED_DEPENDENCY, MAX_ID, MAX_ITEMS, MULTI_STATUS
from .filters import IdFilter, OwnerFilter
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import KEY_PATTERN, REPLAYED_HEADER
from .request_id import HEADER as REQUEST_ID_HEADER
from .viewsets import CRMModelViewSet

ERROR_COMPONENT = "ErrorEnvelope"
# "*" or a comma-separated list of (strong or weak) entity tags, as RFC 9110 defines If-Match.
# Text may hold anything but NUL characters (Django and DRF refuse those: PostgreSQL cannot store
# them). "+" so that where blank is allowed, its own alternative (maxLength 0) is the only match.
NO_NUL_PATTERN = r"^[^\x00]+$"
# ?owner=: "me" or a user id (up to 18 digits, so always within a 64-bit id).
OWNER_PATTERN = r"^(me|[1-9][0-9]{0,17})$"
IF_MATCH_PATTERN = r'^(\*|(W/)?"[\x21\x23-\x7e]*"(\s*,\s*(W/)?"[\x21\x23-\x7e]*")*)$'

ERROR_ENVELOPE_SCHEMA = {
    "type": "object",
    "description": "Every error answer: `success` is false and `error` says what went wrong.",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable machine-readable code, e.g. `validation_error`, `not_found`, "
                    "`precondition_failed`, `throttled`, `idempotency_key_reused`.",
                },
                "message": {"type": "string", "description": "Human-readable explanation."},
                "fields": {
                    "type": "object",
                    "description": "Validation errors per request field: a list of messages for each.",
                    "additionalProperties": {"type": "array", "items": {}},
                },
                "merged_into": {
                    "type": "integer",
                    "description": "On a 404: the record was merged into this one (follow it there).",
                },
            },
        },
    },
}

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: a field, filter or header failed validation, or the body is not valid JSON.",
    "401": "No valid bearer token (tokens are accepted only in the Authorization header).",
    "403": "Authenticated, but not allowed (or a session request without a CSRF token).",
    "404": "No such record, or a page past the last one.",
    "409": (
        "A conflict with a change made meanwhile (`conflict`: a record it deletes gained a record of its own, a "
        "user it names was deleted, or it deadlocked with another write; re-read and retry), or a request with "
        "this Idempotency-Key is still being processed. A parent it names deleted meanwhile is a 400."
    ),
    "411": "A body sent without Content-Length (chunked): send its length.",
    "412": "If-Match does not match the record's current ETag: re-read it and retry.",
    "413": "The request body is over the configured size limit.",
    "406": "No representation the Accept header allows (JSON, or the browsable API's HTML on a browser's request).",
    "415": "The body's Content-Type is not application/json.",
    "422": "This Idempotency-Key was already used with a different request.",
    "429": "Too many requests: retry after the number of seconds in Retry-After.",
    "503": "Logging in is unavailable while the login limits cannot be checked (the cache is unreachable).",
}


def message_envelope(data_schema):
    """The schema of a ``MessageResponse`` (core.api.responses) whose ``data`` is ``data_schema``."""
    return {
        "type": "object",
        "required": ["success", "message", "data"],
        "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "message": {"type": "string"},
            "data": data_schema,
        },
    }


DELETED_SCHEMA = message_envelope(
    {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "integer", "description": "Id of the deleted record."},
            "deleted": {
                "type": "object",
                "description": "Rows removed with it, per kind (a customer's interactions and opportunities).",
                "additionalProperties": {"type": "integer"},
            },
            "unlinked": {
                "type": "object",
                "description": "Rows that stay, no longer linked to it, per kind (a company's people and "
                "opportunities).",
                "additionalProperties": {"type": "integer"},
            },
        },
    }
)


def batch_request_schema(create_ref, patch_ref):
    """The body of ``POST /api/<resource>/batch`` (core/api/batch.py), items as the single-record requests."""
    record_id = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    update_item = {
        "allOf": [
            patch_ref,
            {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": record_id,
                    "if_match": {
                        "type": "string",
                        "pattern": IF_MATCH_PATTERN,
                        "description": "The ETag last read: the item fails with 412 if the record changed since.",
                    },
                },
            },
        ]
    }
    upsert_item = {
        **patch_ref,
        "description": "Matched by its unique key (`external_id`; customers also `email`, in any case): "
        "updated (only the fields sent) when it matches a record the user may change, else created.",
    }
    return {
        "type": "object",
        "description": f"At most {MAX_ITEMS} items in all. The lists run in the order they appear in the body, "
        "each in its own order.",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "create": {"type": "array", "items": create_ref, "maxItems": MAX_ITEMS},
            "update": {"type": "array", "items": update_item, "maxItems": MAX_ITEMS},
            "upsert": {"type": "array", "items": upsert_item, "maxItems": MAX_ITEMS},
            "delete": {"type": "array", "items": record_id, "maxItems": MAX_ITEMS, "description": "Record ids."},
        },
    }


def batch_response_schema(record_ref):
    """The answer to a batch: every item's result, in the order the items ran."""
    deleted = copy.deepcopy(DELETED_SCHEMA["properties"]["data"])
    item = {
        "type": "object",
        "required": ["op", "index", "status"],
        "properties": {
            "op": {"type": "string", "enum": ["create", "update", "upsert", "delete"]},
            "index": {"type": "integer", "description": "Position of the item in its list."},
            "id": {"description": "The id an update or delete item named (as sent)."},
            "status": {
                "type": "integer",
                "description": "The status the single-record request would have answered; "
                f"{FAILED_DEPENDENCY}: valid but not written, as another item of the atomic batch failed.",
            },
            "created": {"type": "boolean", "description": "Upserts: whether the item created a record."},
            "data": {"anyOf": [record_ref, deleted], "description": "The record as written, or what was deleted."},
            "etag": {"type": "string", "description": "The written record's ETag."},
            "error": copy.deepcopy(ERROR_ENVELOPE_SCHEMA["properties"]["error"]),
        },
    }
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {
            "success": {"type": "boolean", "description": "Whether every item was written."},
            "error": copy.deepcopy(ERROR_ENVELOPE_SCHEMA["properties"]["error"]),
            "data": {
                "type": "object",
                "required": ["atomic", "succeeded", "failed", "results"],
                "properties": {
                    "atomic": {"type": "boolean"},
                    "succeeded": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "results": {"type": "array", "items": item},
                    "dry_run": {"type": "boolean", "description": "Present and true when nothing was written."},
                    "changeset": {
                        "type": "object",
                        "nullable": True,
                        "description": "The changeset the batch made (`id`, to undo it: "
                        "`POST /api/changesets/{id}/undo`), or would make (with `?dry_run=true`: its `rows`); "
                        "null when it changed nothing.",
                        "properties": {
                            "id": {"type": "integer", "nullable": True},
                            "kind": {"type": "string"},
                            "label": {"type": "string"},
                            "counts": {"type": "object"},
                            "rows": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            },
        },
    }


def success_envelope(schema):
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"type": "boolean", "enum": [True]}, "data": schema},
    }


def _is_envelope(schema):
    return isinstance(schema, dict) and "success" in schema.get("properties", {})


def _header(name, description, response, required=False, type=str, **extra):  # noqa: A002
    return OpenApiParameter(
        name,
        type,
        OpenApiParameter.HEADER,
        required=required,
        description=description,
        response=response,
        **extra,
    )


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `POST /api/auth/token`, sent as `Authorization: Bearer <token>`. "
            "Tokens in the query string are ignored.",
        }


_ACTION_DESCRIPTIONS = {
    "list": "List {plural}, newest first: filter, search, order and page with the query parameters.",
    "create": "Create a {name}. Send an `Idempotency-Key` header to make retries safe.",
    "retrieve": "One {name}, with its ETag (send it back in `If-None-Match` to get 304 while unchanged).",
    "update": "Change a {name}: only the fields sent are changed (PUT is partial, like PATCH). "
    "Send `If-Match` with the ETag you read to refuse the change (412) if someone changed it since.",
    "partial_update": "Change a {name}: only the fields sent are changed. "
    "Send `If-Match` with the ETag you read to refuse the change (412) if someone changed it since.",
    "destroy": "Delete a {name}. Send `If-Match` to delete only the version you read.",
}


def optional_query_parameters_may_be_empty(result, generator, request, public):
    """An empty optional query parameter (``?status=``) means "not given" everywhere in this API."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return result


def strip_trailing_slashes(result, generator, request, public):
    """Document ``/api/customers`` as the original clients call it (both forms are served)."""
    result["paths"] = {
        (path.rstrip("/") if path != "/" else path): item for path, item in result.get("paths", {}).items()
    }
    return result


class EnvelopeAutoSchema(AutoSchema):
    def get_description(self):
        own_doc = type(self.view).__dict__.get("__doc__")
        action = getattr(self.view, "action", None)
        if not own_doc and action in _ACTION_DESCRIPTIONS and hasattr(self.view, "queryset"):
            meta = self.view.queryset.model._meta
            return _ACTION_DESCRIPTIONS[action].format(name=meta.verbose_name, plural=meta.verbose_name_plural)
        return super().get_description()

    @property
    def _is_detail(self):
        return "{" in self.path

    @property
    def _is_conditional(self):
        # The base viewset's own actions: extra @action routes carry no ETag.
        return isinstance(self.view, CRMModelViewSet) and getattr(self.view, "action", None) in (
            "retrieve",
            "update",
            "partial_update",
            "destroy",
        )

    @property
    def _is_batch(self):
        return isinstance(self.view, CRMModelViewSet) and getattr(self.view, "action", None) == "batch"

    def _record_ref(self, direction, partial=False):
        serializer = self.view.get_serializer_class()()
        serializer.partial = partial
        return self.resolve_serializer(serializer, direction).ref

    def _get_request_body(self, direction="request"):
        if not self._is_batch:
            return super()._get_request_body(direction)
        schema = batch_request_schema(self._record_ref("request"), self._record_ref("request", partial=True))
        return {"content": {"application/json": {"schema": schema}}, "required": True}

    @property
    def _is_idempotent_post(self):
        return isinstance(self.view, CRMModelViewSet) and self.method == "POST"

    @property
    def _requires_auth(self):
        return not any(isinstance(permission, AllowAny) for permission in self.view.get_permissions())

    def _request_headers(self):
        headers = []
        if self._is_idempotent_post:
            headers.append(
                _header(
                    IDEMPOTENCY_HEADER,
                    "Any unique string (e.g. a UUID) per intended write. Retrying with the same key and body "
                    "within 24 hours replays the first response instead of writing again.",
                    response=False,
                    pattern=KEY_PATTERN,
                )
            )
        if self._is_conditional and self.method in ("PUT", "PATCH", "DELETE"):
            headers.append(
                _header(
                    "If-Match",
                    "The ETag the client last read: the change is made only if the record is still that version, "
                    "else 412. Without it the change is unconditional.",
                    response=False,
                    pattern=IF_MATCH_PATTERN,
                )
            )
        if self._is_conditional and self.method == "GET":
            headers.append(
                _header("If-None-Match", "An ETag the client holds: 304 without a body if it is current.", False)
            )
        return headers

    def _response_headers(self):
        headers = [
            _header(REQUEST_ID_HEADER, "The request's id, as logged: the client's own if it sent one.", True, True)
        ]
        if self._is_conditional and self.method in ("GET", "PUT", "PATCH"):
            headers.append(
                _header("ETag", "Version of the record, for If-Match and If-None-Match.", ["200", "304"], True)
            )
        if isinstance(self.view, CRMModelViewSet) and getattr(self.view, "action", None) == "create":
            headers.append(_header("ETag", "Version of the created record.", ["201"], True))
        if self._is_idempotent_post:
            headers.append(
                _header(REPLAYED_HEADER, "`true` when this is the stored answer to an earlier request.", ["200", "201"])
            )
        headers.append(_header("Retry-After", "Seconds to wait before retrying.", ["429"], True, type=int))
        return headers

    def get_override_parameters(self):
        parameters = [*super().get_override_parameters(), *self._request_headers(), *self._response_headers()]
        if self._is_batch:
            parameters.append(
                OpenApiParameter(
                    "atomic",
                    bool,
                    OpenApiParameter.QUERY,
                    description="All or nothing: one failed item and no item is written (the batch answers 400).",
                )
            )
            parameters.append(
                OpenApiParameter(
                    "dry_run",
                    bool,
                    OpenApiParameter.QUERY,
                    description="Run every item and answer as usual, with the changeset it would make, "
                    "but write nothing.",
                )
            )
        if "{id}" in self.path:
            parameters.append(OpenApiParameter("id", int, OpenApiParameter.PATH, description="The record's id."))
        return parameters

    def get_filter_backends(self):
        # An export takes the list's filters.
        if getattr(self.view, "action", None) == "export":
            return getattr(self.view, "filter_backends", [])
        return super().get_filter_backends()

    def _get_filter_parameters(self):
        """Describe filters as django-filter really reads them.

        An empty value means "no filter"; number filters take any number within the
        filter's own bounds; text filters have their maximum length.
        """
        parameters = super()._get_filter_parameters()
        filterset_class = getattr(self.view, "filterset_class", None)
        filters = filterset_class.base_filters if filterset_class else {}
        for parameter in parameters:
            if parameter.get("in") != "query":
                continue
            parameter["allowEmptyValue"] = True
            declared = filters.get(parameter["name"])
            schema = parameter.get("schema", {})
            if isinstance(declared, OwnerFilter):
                parameter["schema"] = {"type": "string", "pattern": OWNER_PATTERN}
            elif isinstance(declared, django_filters.NumberFilter):
                schema.pop("format", None)
                schema["type"] = "integer" if isinstance(declared, IdFilter) else "number"
                for bound, key in (("min_value", "minimum"), ("max_value", "maximum")):
                    if declared.extra.get(bound) is not None:
                        schema[key] = declared.extra[bound]
            elif isinstance(declared, django_filters.CharFilter):
                schema.setdefault("pattern", NO_NUL_PATTERN)
                if declared.extra.get("max_length"):
                    schema["maxLength"] = declared.extra["max_length"]
        return parameters

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & set(schema)
        ):
            schema["pattern"] = NO_NUL_PATTERN
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        # PUT is a partial update in this API (as in the original one): document it as PATCH is.
        if self.method == "PUT" and isinstance(self.view, CRMModelViewSet):
            self.method = "PATCH"
            try:
                return super()._get_request_for_media_type(serializer, direction)
            finally:
                self.method = "PUT"
        return super()._get_request_for_media_type(serializer, direction)

    def _extra_errors(self):
        """{status: description} of the errors a view's action declares (``extra_error_statuses``)."""
        return getattr(self.view, "extra_error_statuses", {}).get(getattr(self.view, "action", None), {})

    def _error_statuses(self):
        # Any URL answers 406 to an Accept header it has no representation for.
        statuses = {"406", "429"} | set(self._extra_errors())
        if any(getattr(throttle, "fail_closed", False) for throttle in self.view.get_throttles()):
            statuses.add("503")  # refused while its limits cannot be counted
        if self._requires_auth:
            statuses |= {"401", "403"}
        if self.method in ("POST", "PUT", "PATCH"):
            statuses |= {"400", "411", "413", "415"}
        if self.method == "GET" and (not self._is_detail or self._is_list_view()):
            statuses |= {"400", "404"}  # filter values, paging; a page past the last
        if self._is_detail:
            statuses.add("404")
        if self._is_idempotent_post:
            statuses |= {"400", "409", "422"}
        if self._is_conditional and self.method in ("PUT", "PATCH", "DELETE"):
            statuses |= {"409", "412"}
        return sorted(statuses)

    def _error_ref(self):
        component = ResolvedComponent(
            name=ERROR_COMPONENT,
            type=ResolvedComponent.SCHEMA,
            # A copy: the enum post-processing hook rewrites component schemas in place.
            schema=copy.deepcopy(ERROR_ENVELOPE_SCHEMA),
            object=ERROR_COMPONENT,
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _get_response_bodies(self, direction="response"):
        if self.method == "DELETE" and self._is_conditional:
            responses = {"200": self._get_response_for_code(copy.deepcopy(DELETED_SCHEMA), "200", direction=direction)}
        elif self._is_batch:
            schema = batch_response_schema(self._record_ref("response"))
            responses = {
                "200": {
                    **self._get_response_for_code(schema, "200", direction=direction),
                    "description": "Every item was written.",
                },
                str(MULTI_STATUS): {
                    **self._get_response_for_code(copy.deepcopy(schema), str(MULTI_STATUS), direction=direction),
                    "description": "Some items failed (see each item's `status` and `error`); the others were written.",
                },
            }
        else:
            responses = super()._get_response_bodies(direction)
        paginated_list = self.method == "GET" and self._is_list_view() and self._get_paginator() is not None
        for code, response in responses.items():
            if not code.startswith("2") or paginated_list:
                continue
            for media_type, media in response.get("content", {}).items():
                if "json" in media_type and not _is_envelope(media.get("schema")):
                    media["schema"] = success_envelope(media["schema"])
        if self._is_conditional and self.method == "GET":
            responses["304"] = {
                **self._get_response_for_code(None, "304", direction=direction),
                "description": "Not modified: the If-None-Match ETag is current.",
            }
        for code in self._error_statuses():
            response = self._get_response_for_code(self._error_ref(), code, direction=direction)
            response["description"] = self._extra_errors().get(code) or ERROR_DESCRIPTIONS[code]
            if self._is_batch and code == "400":
                response["description"] += (
                    " For an atomic batch with a failed item: nothing was written, and `data` holds each item's result."
                )
            responses.setdefault(code, response)
        return responses
