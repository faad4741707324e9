"""Periodic jobs of registration (run by ``flask lms scheduler`` through the RQ worker)."""
from __future__ import annotations

from lms.enrolment.fees import cancel_unpaid
from lms.enrolment.register import create_due_registers

# ENR-5: every registration of a started course has its learner-register entry (created
# at registration; this hourly pass catches any registration made another way) — well
# inside the 3 weeks the rule allows.
# ENR-1: registrations still unpaid at their payment deadline (00:00 KST of the start date
# for regular ones) are cancelled within 5 minutes of it.
PERIODIC = [(create_due_registers, 3600), (cancel_unpaid, 300)]
