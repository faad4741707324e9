"""Periodic jobs of the auth package."""
from __future__ import annotations

from lms.auth.service import expire_idle_sessions

# End idle sessions every minute, so the session table tells the truth to admins.
PERIODIC = [(expire_idle_sessions, 60)]
