from __future__ import annotations

from datetime import datetime, timezone

from apiflask import APIBlueprint, Schema, fields
from marshmallow import ValidationError

from lms import clock
from lms.schemas import AwareDateTime

bp = APIBlueprint("core_api", __name__, url_prefix="/api/v1", tag="Core")
# Registered only when LMS_ENV=testing (create_app): elsewhere its paths answer 404.
testing_bp = APIBlueprint("testing_api", __name__, url_prefix="/api/v1", tag="Testing")


class HealthOut(Schema):
    status = fields.String()


# The testing clock's range: from the Unix epoch (TOTP steps start there) to well before
# datetime's end, so the clock can run on for centuries without overflowing.
CLOCK_MIN = datetime(1970, 1, 1, tzinfo=timezone.utc)
CLOCK_MAX = datetime(9000, 1, 1, tzinfo=timezone.utc)


def _clock_in_range(value: datetime) -> None:
    try:
        ok = CLOCK_MIN <= value < CLOCK_MAX
    except OverflowError:  # the offset pushes it outside datetime's range
        ok = False
    if not ok:
        raise ValidationError("The time must lie between 1970-01-01 and 9000-01-01 (UTC).")


class ClockIn(Schema):
    now = AwareDateTime(required=True, validate=_clock_in_range)


@bp.get("/health")
@bp.output(HealthOut)
def health():
    """Liveness: 200 without authentication."""
    return {"status": "ok"}


@testing_bp.put("/testing/clock")
@testing_bp.input(ClockIn, arg_name="body")
@testing_bp.output({}, status_code=204)
def set_clock(body):
    """Testing only (LMS_ENV=testing): set the server's clock for every rule, job, log
    entry and OTP check; it runs on from that instant."""
    clock.set_now(body["now"])
    return ""


@testing_bp.delete("/testing/clock")
@testing_bp.output({}, status_code=204)
def reset_clock():
    """Testing only: back to real time."""
    clock.reset()
    return ""


@testing_bp.get("/testing/clock")
def get_clock():
    """Testing only: the server's current time."""
    return {"now": clock.iso(clock.now())}
