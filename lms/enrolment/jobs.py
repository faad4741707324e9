"""Periodic jobs of registration (run by ``flask lms scheduler`` through the RQ worker)."""
from __future__ import annotations

from lms.enrolment.register import create_due_registers

# ENR-5: every registration of a started course has its learner-register entry (created
# at registration; this hourly pass catches any registration made another way) — well
# inside the 3 weeks the rule allows.
PERIODIC = [(create_due_registers, 3600)]
