"""The learning-history certificate (평생학습이력증명서, seed 000): a learner's completed
courses with credits, grades and attendance rates as a PDF carrying a verification code an
employer checks on the public page ``/verify/<code>``.

Grades are read through ONE function, ``course_results``. It asks the grading package for a
finalised grade when one exists: ``lms.grading.results.finalised_grade(course_id,
learner_id)`` returning ``None`` (not final) or a dict ``{"letter": "A+", "points": 4.5,
"passed": True}``. Until that function exists (or when it answers ``None``) the grade reads
"성적 미확정".

Issuing stores the certified content (holder's masked name, courses) with the SHA-256 of the
PDF handed out (evidence). The PDF is built with reportlab's ``invariant`` mode, so the same
certificate rebuilt later has the same bytes and hash. Codes are 20 random base32
characters (100 bits): unguessable and not sequential.
"""
from __future__ import annotations

import hashlib
import io
import secrets
from datetime import datetime

from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.content.models import Course
from lms.db import db
from lms.enrolment import rules
from lms.enrolment.models import Certificate, Enrollment
from lms.errors import not_found

GRADE_PENDING = "성적 미확정"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by employers
CODE_LENGTH = 20


def _grade_source():
    """The grading package's finalised-grade reader, when it exists (optional import)."""
    try:
        from lms.grading.results import finalised_grade  # type: ignore[import-not-found]
    except ImportError:
        return None
    return finalised_grade


def course_results(learner_id: int, now: datetime | None = None) -> list[dict]:
    """The learner's courses that have ended (registration active or completed, course not
    cancelled): code, title, credits, period, attendance rate (ATT-6, from
    ``lms.attendance.reports``) and the finalised grade or ``GRADE_PENDING``."""
    from lms.attendance import reports

    now = now or clock.now()
    finalised_grade = _grade_source()
    out = []
    rows = db.session.scalars(
        select(Course).join(Enrollment, Enrollment.course_id == Course.id)
        .where(Enrollment.user_id == learner_id, Enrollment.status.in_(("active", "completed")),
               Course.status != "cancelled").order_by(Course.starts_on, Course.id))
    for course in rows:
        if rules.course_end(course.starts_on, course.weeks) > now:
            continue
        rate = reports.learner_result(course, learner_id).rate
        grade = finalised_grade(course.id, learner_id) if finalised_grade else None
        out.append({"course_id": course.id, "code": course.code, "title": course.title, "credits": course.credits,
                    "starts_on": course.starts_on.isoformat(),
                    "ends_on": rules.course_ends_on(course.starts_on, course.weeks).isoformat(),
                    "attendance_rate": round(float(rate) * 100, 1),
                    "grade": grade["letter"] if grade else GRADE_PENDING,
                    "points": grade.get("points") if grade else None,
                    "passed": bool(grade.get("passed")) if grade else None})
    return out


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def pretty_code(code: str) -> str:
    return "-".join(code[i:i + 5] for i in range(0, len(code), 5))


def normalise_code(text: str) -> str:
    return "".join(ch for ch in (text or "").upper() if ch.isalnum())[:64]


def render_pdf(cert: Certificate, verify_url: str) -> bytes:
    """The certificate as a PDF (Korean CID font, deterministic bytes)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "HYSMyeongJo-Medium"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.setTitle("평생학습이력증명서")
    width, height = A4
    y = height - 30 * mm
    c.setFont(font, 20)
    c.drawCentredString(width / 2, y, "평생학습이력증명서")
    y -= 9 * mm
    c.setFont(font, 10)
    c.drawCentredString(width / 2, y, "Learning History Certificate")
    y -= 14 * mm
    issued = clock.to_kst(cert.issued_at)
    for label, value in (("성명 (Name)", cert.holder_masked),
                         ("발급일 (Issued)", issued.strftime("%Y-%m-%d %H:%M KST")),
                         ("확인 번호 (Verification code)", pretty_code(cert.code))):
        c.drawString(20 * mm, y, f"{label}: {value}")
        y -= 7 * mm
    y -= 4 * mm
    cols = (20, 42, 110, 128, 152, 175)
    heads = ("과목코드", "학습과정명", "학점", "기간 종료", "출석률", "성적")
    c.setFont(font, 9)
    for x, h in zip(cols, heads):
        c.drawString(x * mm, y, h)
    y -= 2 * mm
    c.line(20 * mm, y, width - 20 * mm, y)
    y -= 6 * mm
    total = 0
    for row in cert.courses:
        if y < 40 * mm:
            c.showPage()
            c.setFont(font, 9)
            y = height - 25 * mm
        title = row["title"] if len(row["title"]) <= 30 else row["title"][:29] + "…"
        for x, v in zip(cols, (row["code"], title, str(row["credits"]), row["ends_on"],
                               f"{row['attendance_rate']}%", row["grade"])):
            c.drawString(x * mm, y, v)
        if row.get("passed"):
            total += row["credits"]
        y -= 6 * mm
    if not cert.courses:
        c.drawString(20 * mm, y, "이수한 학습과정이 없습니다.")
        y -= 6 * mm
    y -= 4 * mm
    c.drawString(20 * mm, y, f"성적 확정·이수 학점 합계: {total}학점")
    c.setFont(font, 8)
    c.drawString(20 * mm, 25 * mm, "이 증명서의 진위는 아래 주소에서 확인 번호로 확인할 수 있습니다.")
    c.drawString(20 * mm, 20 * mm, verify_url)
    c.showPage()
    c.save()
    return buf.getvalue()


def issue(learner: User, verify_url_for) -> tuple[Certificate, bytes]:
    """Issue a certificate now: snapshot, code, PDF; the PDF's hash is stored (evidence).
    ``verify_url_for(code)`` gives the public page's address printed on the PDF."""
    now = clock.now()
    courses = course_results(learner.id, now)
    while True:
        code = new_code()
        if db.session.scalar(select(Certificate.id).where(Certificate.code == code)) is None:
            break
    cert = Certificate(user_id=learner.id, code=code, issued_at=now, holder_masked=rules.mask_name(learner.name),
                       courses=courses, pdf_sha256="")
    pdf = render_pdf(cert, verify_url_for(code))
    cert.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    db.session.add(cert)
    db.session.flush()
    return cert, pdf


def by_code(code: str) -> Certificate | None:
    code = normalise_code(code)
    if len(code) != CODE_LENGTH:
        return None
    return db.session.scalar(select(Certificate).where(Certificate.code == code))


def own_certificate(code: str, user: User) -> Certificate:
    """A certificate its holder, or an admin of the holder's institution, may download."""
    cert = by_code(code)
    if cert is None:
        raise not_found("certificate")
    if cert.user_id != user.id:
        holder = db.session.get(User, cert.user_id)
        if user.role != "admin" or holder is None or holder.institution_id != user.institution_id:
            raise not_found("certificate")
    return cert


def certificate_dict(cert: Certificate) -> dict:
    return {"code": cert.code, "issued_at": clock.iso(cert.issued_at), "holder": cert.holder_masked,
            "courses": cert.courses, "pdf_sha256": cert.pdf_sha256}
