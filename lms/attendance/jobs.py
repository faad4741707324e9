"""Periodic jobs of attendance (run by ``flask lms scheduler`` through the RQ worker)."""
from __future__ import annotations

from lms.attendance.service import expire_idle_views, settle_due

# ATT-2: settle every lesson whose deadline has passed, every minute, so statuses are
# stored (attended / absent / excused) and reports never recompute history per request.
# REC-1: end the views whose browser went away without saying so.
PERIODIC = [(settle_due, 60), (expire_idle_views, 60)]
