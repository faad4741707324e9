from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.db import EncryptedText, UTCDateTime, db
from lms.i18n import N_

ROLES = ("learner", "instructor", "ta", "admin", "inspector")
STAFF_ROLES = ("instructor", "ta")
_ROLE_LABELS = {"learner": N_("학습자"), "instructor": N_("교수자"), "ta": N_("조교"),
                "admin": N_("관리자"), "inspector": N_("점검자")}


def role_label(role: str) -> str:
    """The role's name in the page's language."""
    from flask_babel import gettext

    label = _ROLE_LABELS.get(role)
    return gettext(label) if label else role


class Institution(db.Model):
    __tablename__ = "institution"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # EXM-3: item difficulty levels, easiest first; None: easy, medium, hard.
    difficulty_levels: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class User(db.Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    # Usernames stay in clear so they can be searched; all other personal data is encrypted.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str | None] = mapped_column(EncryptedText())  # REC-4
    phone: Mapped[str | None] = mapped_column(EncryptedText())  # REC-4
    birth_date: Mapped[str | None] = mapped_column(EncryptedText())  # REC-4, YYYY-MM-DD
    email: Mapped[str | None] = mapped_column(EncryptedText())  # REC-4
    disability: Mapped[bool] = mapped_column(Boolean, default=False)  # EXM-4: 90-minute limit
    otp_secret: Mapped[str] = mapped_column(EncryptedText())
    # False until the user has proven the authenticator with one valid code.
    otp_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last TOTP time step accepted: a code is never accepted twice.
    otp_last_step: Mapped[int | None] = mapped_column(Integer)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # For inspectors (REC-6): access ends after this time, when set.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    institution = relationship("Institution")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return not self.locked

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class UserSession(db.Model):
    """A server-side login session (HTML cookie or API bearer token).

    Only the SHA-256 of the token is stored. One ID, one session (EXM-9): a new login
    ends every other session of the user with ``end_reason='replaced'``.
    """

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(String(8))  # "api" | "web"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(16))  # logout|replaced|expired|locked
    ip: Mapped[str | None] = mapped_column(String(45))
    device: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(512))

    user = relationship("User")

    __table_args__ = (Index("ix_user_session_user_open", "user_id", "ended_at"),)


class LoginTicket(db.Model):
    """Issued after a correct password; exchanged for a session with a valid TOTP code."""

    __tablename__ = "login_ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(45))
