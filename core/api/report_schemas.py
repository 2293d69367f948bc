"""OpenAPI descriptions of the report payloads (they are computed dicts, not model serializers)."""

from drf_spectacular.utils import extend_schema

MONEY = {"type": "number", "description": "Amount, rounded to cents."}
FIGURES = {
    "type": "object",
    "required": ["count", "total_value", "weighted_value"],
    "properties": {
        "count": {"type": "integer"},
        "total_value": MONEY,
        "weighted_value": {**MONEY, "description": "Sum of value x probability / 100, rounded to cents."},
    },
}
RATE = {"type": "number", "nullable": True, "description": "won / (won + lost); null while nothing has closed."}

PIPELINE = {
    "type": "object",
    "required": ["stages", "open", "won", "lost", "closing_this_month", "win_rate", "lost_reasons"],
    "properties": {
        "stages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["stage", "label", *FIGURES["required"]],
                "properties": {"stage": {"type": "string"}, "label": {"type": "string"}, **FIGURES["properties"]},
            },
        },
        "open": FIGURES,
        "won": FIGURES,
        "lost": FIGURES,
        "closing_this_month": FIGURES,
        "win_rate": {
            "type": "object",
            "required": ["by_count", "by_value"],
            "properties": {"by_count": RATE, "by_value": RATE},
        },
        "lost_reasons": {
            "type": "array",
            "description": "The lost deals by their lost reason, the most frequent first (then the largest total); "
            "at most 50 reasons. The deals lost with no reason given are one group, whose reason is null.",
            "items": {
                "type": "object",
                "required": ["reason", "label", "count", "total_value"],
                "properties": {
                    "reason": {"type": "string", "nullable": True},
                    "label": {"type": "string", "description": 'The reason, or "No reason given".'},
                    "count": {"type": "integer"},
                    "total_value": MONEY,
                },
            },
        },
        "group_by": {"type": "string", "enum": ["company", "owner", "stage"], "description": "With ?group_by= only."},
        "groups": {
            "type": "array",
            "description": "With ?group_by= only: the figures per company, owner or stage, largest open "
            "pipeline first. The key is null for opportunities without a company (or a customer without an owner).",
            "items": {
                "type": "object",
                "required": ["key", "label", "open", "won", "lost"],
                "properties": {
                    "key": {"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True},
                    "label": {"type": "string", "nullable": True},
                    "open": FIGURES,
                    "won": FIGURES,
                    "lost": FIGURES,
                },
            },
        },
    },
}

FORECAST = {
    "type": "object",
    "required": ["today", "months", "overdue", "later", "unscheduled", "total"],
    "properties": {
        "today": {"type": "string", "format": "date"},
        "months": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["month", *FIGURES["required"]],
                "properties": {"month": {"type": "string", "example": "2026-11"}, **FIGURES["properties"]},
            },
        },
        "overdue": FIGURES,
        "later": FIGURES,
        "unscheduled": FIGURES,
        "total": FIGURES,
    },
}

ACTIVITY = {
    "type": "object",
    "required": ["group_by", "date_from", "date_to", "periods", "totals", "going_cold"],
    "properties": {
        "group_by": {"type": "string", "enum": ["week", "month"]},
        "date_from": {"type": "string", "format": "date"},
        "date_to": {"type": "string", "format": "date"},
        "periods": {
            "type": "array",
            "description": "One entry per week or month: its start and the interactions per type.",
            "items": {"type": "object"},
        },
        "totals": {
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "by_type": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        },
        "going_cold": {
            "type": "object",
            "required": ["days", "since", "count", "customers"],
            "properties": {
                "days": {"type": "integer"},
                "since": {"type": "string", "format": "date-time"},
                "count": {"type": "integer", "description": "All customers going cold (the list is capped)."},
                "customers": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}


def report_schema(query_serializer, payload):
    """The schema of a report view: its query parameters and its payload (enveloped by the AutoSchema)."""
    return extend_schema(parameters=[query_serializer], responses={200: payload})
