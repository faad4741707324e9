"""The inspectors' log search (REC-3, REC-6), pure parts: filter parsing and validation,
opaque keyset cursors, IP ranges, KST day and week ranges. Plain values in, plain values
out; no database, no request (``now`` is never needed: a search has no deadline).

A filter string that cannot be read raises :class:`FilterError` (the API answers 400
``invalid_request`` naming the parameter; the pages show the message).
"""
from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

from lms.clock import kst_midnight

# The logs an inspector can search (REC-3): access records, viewing sessions, the viewing
# log's events and the exam evidence.
LOG_KINDS = ("access", "views", "view-events", "exams")

PAGE_SIZE = 50  # default rows per page
MAX_PAGE_SIZE = 500
MAX_INT = 2**31 - 1  # ids of INTEGER columns
MAX_BIGINT = 2**63 - 1  # ids of the log tables (BIGINT on PostgreSQL)
# An IPv4 CIDR range is searched as at most this many textual prefixes (or addresses).
MAX_IP_PATTERNS = 256
MAX_TEXT = 64  # longest event/kind/role filter

# Which filters each log accepts (anything else is refused: 400).
_COMMON = ("from", "to", "ip", "course_id", "section_id", "week", "cursor", "limit", "format", "order",
           "header")
ALLOWED = {
    "access": _COMMON + ("user_id", "role", "event"),
    "views": _COMMON + ("learner_id", "lesson_id"),
    "view-events": _COMMON + ("learner_id", "lesson_id", "view_id", "kind"),
    "exams": _COMMON + ("learner_id", "exam_id", "attempt_id", "kind"),
}
FORMATS = ("json", "csv", "xlsx")
HEADERS = ("names", "labels")  # export header line: field names, or the page's column labels


class FilterError(ValueError):
    """A filter value that cannot be read; ``param`` names it."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class IpFilter:
    """Exact addresses and/or textual prefixes ("10.1.2." matches 10.1.2.0–255)."""

    exact: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class Cursor:
    """A position in the (time, id) order: rows after it (``before=False``) or before it."""

    kind: str
    order: str  # asc | desc
    at: datetime
    id: int
    before: bool = False


@dataclass(frozen=True)
class LogFilters:
    kind: str
    person_id: int | None = None  # user_id (access) or learner_id (the others)
    course_id: int | None = None
    section_id: int | None = None
    week: int | None = None
    lesson_id: int | None = None
    view_id: int | None = None
    exam_id: int | None = None
    attempt_id: int | None = None
    role: str | None = None
    event: str | None = None  # access: event; view-events and exams: kind
    ip: IpFilter | None = None
    start: datetime | None = None  # aware UTC, inclusive
    end: datetime | None = None  # aware UTC, exclusive
    order: str = "asc"
    limit: int = PAGE_SIZE
    cursor: Cursor | None = None
    format: str | None = None  # None: decided by the Accept header
    header: str = "names"
    # The filters as given (normalised text), for the access log and the pages' links.
    given: dict = field(default_factory=dict)

    def summary(self) -> str:
        """A short text of the filters, for the access log's detail (REC-6)."""
        parts = [self.kind] + [f"{k}={v}" for k, v in self.given.items() if k not in ("cursor", "format", "header")]
        return " ".join(parts)

    def without_cursor(self) -> "LogFilters":
        return replace(self, cursor=None)


def _int(param: str, raw: str, *, low: int = 1, high: int = MAX_INT) -> int:
    text = raw.strip()
    if not text.isascii() or not text.lstrip("-").isdigit():
        raise FilterError(param, "a whole number is expected")
    value = int(text)
    if not low <= value <= high:
        raise FilterError(param, f"must be between {low} and {high}")
    return value


def parse_time(param: str, raw: str, *, end: bool) -> datetime:
    """``YYYY-MM-DD`` is a KST calendar day: ``from`` starts at its 00:00, ``to`` includes
    the whole day (ends at the next day's 00:00). An ISO time needs an offset; as ``to`` it
    is included (the range ends one microsecond after it). Returns aware UTC."""
    text = raw.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise FilterError(param, "not a date (YYYY-MM-DD)") from None
        return kst_day_start(day + timedelta(days=1) if end else day)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(param, "not a date (YYYY-MM-DD) or an ISO 8601 time with an offset") from None
    if t.tzinfo is None:
        raise FilterError(param, "the time needs an offset, e.g. +09:00")
    t = t.astimezone(timezone.utc)
    return t + timedelta(microseconds=1) if end else t


def kst_day_start(day: date) -> datetime:
    """00:00 KST of ``day`` as aware UTC."""
    return kst_midnight(day).astimezone(timezone.utc)


def week_range(starts_on: date, week: int) -> tuple[datetime, datetime]:
    """The KST week ``week`` (1-based) of a course starting on ``starts_on``: [start, end)."""
    first = starts_on + timedelta(days=7 * (week - 1))
    return kst_day_start(first), kst_day_start(first + timedelta(days=7))


def parse_ip(raw: str) -> IpFilter:
    """An exact address (IPv4 or IPv6), an IPv4 CIDR range (``10.1.0.0/16``) or an IPv4
    prefix ending in a dot (``10.1.``). A range becomes textual prefixes on octet
    boundaries (``10.1.``) or, under /24, the exact addresses — at most 256 of either —
    so the query stays plain string comparison on the stored column."""
    text = raw.strip()
    if not text or len(text) > 64:
        raise FilterError("ip", "an address, a CIDR range or a prefix like 10.1. is expected")
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise FilterError("ip", "not a valid CIDR range") from None
        if net.version != 4:
            if net.prefixlen == 128:
                return IpFilter(exact=(str(net.network_address),), text=text)
            raise FilterError("ip", "IPv6 addresses are searched exactly (no ranges)")
        return _ipv4_range(net, text)
    if text.endswith("."):
        octets = text[:-1].split(".")
        if not 1 <= len(octets) <= 3 or not all(o.isdigit() and o.isascii() and int(o) <= 255
                                                and str(int(o)) == o for o in octets):
            raise FilterError("ip", "a prefix is 1–3 octets followed by a dot, e.g. 10.1.")
        return IpFilter(prefixes=(text,), text=text)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise FilterError("ip", "not a valid IP address") from None
    return IpFilter(exact=(str(addr),), text=text)


def _ipv4_range(net: ipaddress.IPv4Network, text: str) -> IpFilter:
    if net.prefixlen == 0:
        return IpFilter(prefixes=("",), text=text)  # every IPv4 address: any text with a dot
    if net.prefixlen > 24:
        return IpFilter(exact=tuple(str(a) for a in net), text=text)
    # Round the prefix length up to an octet boundary and list the sub-prefixes.
    boundary = -(-net.prefixlen // 8) * 8
    keep = boundary // 8
    subnets = [net] if boundary == net.prefixlen else list(net.subnets(new_prefix=boundary))
    prefixes = tuple(".".join(str(s.network_address).split(".")[:keep]) + "." for s in subnets)
    assert len(prefixes) <= MAX_IP_PATTERNS  # at most 2**7: /1 → 128 first octets
    return IpFilter(prefixes=prefixes, text=text)


def encode_cursor(c: Cursor) -> str:
    raw = json.dumps([c.kind, c.order, c.at.astimezone(timezone.utc).isoformat(), c.id, int(c.before)],
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(raw: str, kind: str, order: str) -> Cursor:
    """The cursor a previous page answered; one of another log or order is refused."""
    text = raw.strip()
    if not text or len(text) > 200:
        raise FilterError("cursor", "not a cursor of this search")
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        c_kind, c_order, at, row_id, before = data
        at = datetime.fromisoformat(at)
        if (not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 <= row_id <= MAX_BIGINT
                or at.tzinfo is None or before not in (0, 1)):
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise FilterError("cursor", "not a cursor of this search") from None
    if c_kind != kind or c_order != order:
        raise FilterError("cursor", "the cursor belongs to another search or order")
    return Cursor(kind, order, at.astimezone(timezone.utc), row_id, bool(before))


def _text(param: str, raw: str) -> str:
    text = raw.strip()
    if not text or len(text) > MAX_TEXT or not all(c.isalnum() or c in "_-" for c in text) or not text.isascii():
        raise FilterError(param, "letters, digits, _ or - (at most 64)")
    return text


def parse_filters(kind: str, args, *, roles: tuple[str, ...] = ()) -> LogFilters:
    """Read the query arguments (a mapping of str → str, e.g. ``request.args``) of a search
    of ``kind``. Empty values are unset (the pages' forms send every field). Unknown
    parameters, repeated parameters and unreadable values raise :class:`FilterError`."""
    if kind not in LOG_KINDS:
        raise FilterError("kind", "unknown log")
    allowed = ALLOWED[kind]
    values: dict[str, str] = {}
    lists = args.to_dict(flat=False) if hasattr(args, "to_dict") else {k: [v] for k, v in args.items()}
    for key, vals in lists.items():
        if key not in allowed:
            raise FilterError(key, f"not a filter of this log (filters: {', '.join(allowed)})")
        vals = [v for v in vals if v is not None and v.strip() != ""]
        if len(vals) > 1:
            raise FilterError(key, "given more than once")
        if vals:
            values[key] = vals[0]
    out: dict = {"kind": kind}
    given: dict[str, str] = {}
    person_key = "user_id" if kind == "access" else "learner_id"
    for key, attr in ((person_key, "person_id"), ("course_id", "course_id"), ("section_id", "section_id"),
                      ("lesson_id", "lesson_id"), ("exam_id", "exam_id"), ("attempt_id", "attempt_id")):
        if key in values:
            out[attr] = _int(key, values[key])
            given[key] = str(out[attr])
    if "view_id" in values:
        out["view_id"] = _int("view_id", values["view_id"], high=MAX_BIGINT)
        given["view_id"] = str(out["view_id"])
    if "week" in values:
        out["week"] = _int("week", values["week"], high=52)
        given["week"] = str(out["week"])
        if "course_id" not in values and "section_id" not in values:
            raise FilterError("week", "a week is a week of a course: give course_id (or section_id) too")
    if "role" in values:
        role = values["role"].strip()
        if roles and role not in roles:
            raise FilterError("role", f"one of {', '.join(roles)}")
        out["role"] = given["role"] = _text("role", role)
    for key in ("event", "kind"):
        if key in values:
            out["event"] = given[key] = _text(key, values[key])
    if "ip" in values:
        out["ip"] = parse_ip(values["ip"])
        given["ip"] = out["ip"].text
    if "from" in values:
        out["start"] = parse_time("from", values["from"], end=False)
        given["from"] = values["from"].strip()
    if "to" in values:
        out["end"] = parse_time("to", values["to"], end=True)
        given["to"] = values["to"].strip()
    if out.get("start") and out.get("end") and out["end"] <= out["start"]:
        raise FilterError("to", "the range ends before it starts")
    order = values.get("order", "asc").strip()
    if order not in ("asc", "desc"):
        raise FilterError("order", "asc or desc")
    out["order"] = order
    if order != "asc":
        given["order"] = order
    if "limit" in values:
        out["limit"] = _int("limit", values["limit"], high=MAX_PAGE_SIZE)
    if "format" in values:
        fmt = values["format"].strip().lower()
        if fmt not in FORMATS:
            raise FilterError("format", f"one of {', '.join(FORMATS)}")
        out["format"] = fmt
    if "header" in values:
        if values["header"].strip() not in HEADERS:
            raise FilterError("header", f"one of {', '.join(HEADERS)}")
        out["header"] = values["header"].strip()
    if "cursor" in values:
        out["cursor"] = decode_cursor(values["cursor"], kind, order)
        given["cursor"] = values["cursor"].strip()
    return LogFilters(**out, given=given)
