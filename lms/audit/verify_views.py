"""The evidence verification page (REC-1, REC-3, REC-6), for administrators and
inspectors: pick KST days (at most ``MAX_DAYS``), recompute every chain and daily digest,
and see per table what was verified and the first row that breaks; below, the last
daily digests and the retention ledger. Read-only: it writes nothing but the access log.

Verification covers the whole evidence store (the chain is not per institution).
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from lms import clock
from lms.audit import chain, rules
from lms.audit.models import EvidenceDigest, EvidenceSealState, RetentionLedger
from lms.db import db
from lms.i18n import N_
from lms.security import page_roles_required

bp = Blueprint("audit_verify_pages", __name__, template_folder="templates")

MAX_DAYS = 31
PAGE_ROLES = ("admin", "inspector")

DASHBOARD_LINKS = {
    "admin": [("audit_verify_pages.verify_page", N_("기록 무결성 검증"))],
    "inspector": [("audit_verify_pages.verify_page", N_("기록 무결성 검증"))],
}

TABLE_LABELS = {"access_log": N_("접속 기록"), "view_event": N_("학습(수강) 기록"),
                "attempt_event": N_("시험 기록"), "admin_action": N_("관리 작업 기록")}
REASON_LABELS = {"edited": N_("내용 변경"), "deleted": N_("삭제(또는 날짜 변경)"),
                 "inserted": N_("봉인 후 삽입"), "link_altered": N_("체인 연결값 변경"),
                 "missing_digest": N_("일별 요약 누락(하루치 삭제)"), "digest_mismatch": N_("일별 요약 불일치")}


def _parse(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.get("/audit/verify")
@page_roles_required(*PAGE_ROLES)
def verify_page():
    yesterday = rules.kst_day(clock.now()) - timedelta(days=1)
    raw_from, raw_to = request.args.get("from"), request.args.get("to")
    from_day, to_day = _parse(raw_from) or yesterday, _parse(raw_to)
    to_day = to_day or from_day
    error = report = None
    if (raw_from and _parse(raw_from) is None) or (raw_to and _parse(raw_to) is None):
        error = _("날짜는 YYYY-MM-DD 형식으로 입력하세요.")
    elif to_day < from_day:
        error = _("끝 날짜가 시작 날짜보다 앞섭니다.")
    elif (to_day - from_day).days + 1 > MAX_DAYS:
        error = _("한 번에 최대 %(n)s일까지 검증할 수 있습니다. 더 긴 기간은 flask lms audit verify 명령을 쓰세요.",
                  n=MAX_DAYS)
    elif "run" in request.args:
        report = chain.verify(from_day, to_day)
    digests = db.session.scalars(select(EvidenceDigest).order_by(EvidenceDigest.day.desc(), EvidenceDigest.tbl)
                                 .limit(20)).all()
    ledger = db.session.scalars(select(RetentionLedger).order_by(RetentionLedger.id.desc()).limit(20)).all()
    seal = {s.tbl: s for s in db.session.scalars(select(EvidenceSealState))}
    status = 400 if error else 200
    return render_template("audit/verify.html", from_day=from_day, to_day=to_day, error=error, report=report,
                           digests=digests, ledger=ledger, seal=seal, max_days=MAX_DAYS,
                           table_label=lambda t: _(TABLE_LABELS.get(t, t)),
                           reason_label=lambda r: _(REASON_LABELS.get(r, r)),
                           tables=rules.EVIDENCE_TABLES), status
