"""Shared marshmallow pieces for the JSON API: strict types, ISO times in KST."""
from __future__ import annotations

import math
from datetime import datetime

from apiflask import Schema, fields
from apiflask.validators import Length
from marshmallow import ValidationError


class StrictBool(fields.Boolean):
    """Only JSON true/false: "true", 1 and friends are a wrong type (400)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean (true or false).")
        return value


class StrictInt(fields.Integer):
    def __init__(self, **kwargs):
        kwargs.setdefault("strict", True)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class FiniteFloat(fields.Float):
    """A JSON number that is finite (no NaN/Infinity), not a bool, not a string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        try:
            number = float(value)  # a huge JSON integer overflows here: 400, not 500
        except OverflowError as exc:
            raise ValidationError("Number too large.") from exc
        if not math.isfinite(number):
            raise ValidationError("Number must be finite.")
        return number


class AwareDateTime(fields.DateTime):
    """ISO 8601 with an offset, as API.md requires; naive times are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Not a valid ISO 8601 time.")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError("Not a valid ISO 8601 time.") from exc
        if parsed.tzinfo is None:
            raise ValidationError("The time needs an offset, e.g. +09:00.")
        return parsed


class ErrorDetail(Schema):
    code = fields.String()
    message = fields.String()
    rules = fields.List(fields.String())


class ErrorOut(Schema):
    error = fields.Nested(ErrorDetail)


class Empty(Schema):
    pass


# --- shared by the evidence-backed applications (ATT-5 excuses, EXM-11 make-up exams) ---

MAX_DECISION_COMMENT = 2000


class DecisionIn(Schema):
    """A staff decision on an application: approve or reject, with a comment."""

    approve = StrictBool(required=True)
    comment = fields.String(load_default=None, allow_none=True, validate=Length(0, MAX_DECISION_COMMENT))


class EvidenceOut(Schema):
    """An evidence file kept with an application (size and SHA-256 as stored)."""

    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    uploaded_at = fields.String()
