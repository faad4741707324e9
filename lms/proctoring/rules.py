"""Proctoring rules (EXM-8, EXM-9), pure.

Source: 학점은행제 원격교육 업무처리 기준 별표3-2 4), 7); 운영 가이드 IV-2-6).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

INCIDENT_KINDS = (  # what the lockdown page reports (EXM-9: exam window kept, capture prevented)
    "fullscreen_exit", "blur", "visibility_hidden", "copy", "cut", "paste", "contextmenu", "print",
    "devtools", "fullscreen_refused", "screenshot_key", "other",
)
MAX_INCIDENTS_PER_ATTEMPT = 2000  # beyond this a flood is refused (the first ones are evidence enough)


@dataclass(frozen=True)
class AddressUse:
    """Another learner's use of an address: ``same_exam`` — their attempt in this exam used
    it (at any time); ``running`` — their attempt (any exam) using it is running now."""

    learner_id: int
    exam_id: int
    same_exam: bool
    running: bool


def address_conflict(my_learner_id: int, uses: list[AddressUse], excepted: bool) -> AddressUse | None:
    """EXM-9: the first use that forbids this learner the address, or None.

    Forbidden when another learner's attempt in the same exam has used it, or another
    learner's attempt in any exam is running from it now — unless an admin's documented
    exception (``excepted``) covers this exam and address."""
    if excepted:
        return None
    for use in uses:
        if use.learner_id != my_learner_id and (use.same_exam or use.running):
            return use
    return None


def seb_header_ok(url: str, config_key: str | None, header: str | None) -> bool:
    """Safe Exam Browser: ``X-SafeExamBrowser-ConfigKeyHash`` is the hex SHA-256 of the
    request's absolute URL followed by the exam's config key."""
    if not config_key or not header:
        return False
    expected = hashlib.sha256((url + config_key).encode()).hexdigest()
    return hmac.compare_digest(expected, header.strip().lower())
