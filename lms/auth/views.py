"""HTML pages: password → OTP login (with QR enrolment), logout, admin user pages."""
from __future__ import annotations

import segno
from flask import Blueprint, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from lms import clock
from lms.audit.service import log_access
from lms.auth import service
from lms.auth.api import search_users
from lms.auth.models import ROLES, User
from lms.db import db
from lms.errors import ApiError, not_found
from lms.i18n import N_
from lms.security import current_auth, page_roles_required

bp = Blueprint("auth_pages", __name__, template_folder="templates")

DASHBOARD_LINKS = {"admin": [("auth_pages.admin_users", N_("사용자 관리"))]}


def _safe_next(target: str | None) -> str:
    """``target`` when it is a path of this site, else the home page. Browsers read ``\\``
    as ``/`` and drop tabs and newlines (so does werkzeug's Location), so ``/\\evil`` or
    ``/<TAB>/evil`` would be ``//evil``, another host: refused like ``//evil``."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(c < " " or c == "\x7f" for c in target)):
        return target
    return url_for("core_pages.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        if not username or not password:
            error = _("아이디와 비밀번호를 입력하세요.")
        else:
            try:
                _user, ticket = service.begin_login(username[:64], password[:1024])
            except ApiError as exc:
                error = {
                    "invalid_credentials": _("아이디 또는 비밀번호가 올바르지 않습니다."),
                    "too_many_attempts": _("로그인 실패가 많아 잠시 제한되었습니다. %(s)s초 후 다시 시도하세요.",
                                           s=exc.headers.get("Retry-After", "?")),
                    "account_locked": _("잠긴 계정입니다. 관리자에게 문의하세요."),
                    "account_expired": _("사용 기간이 끝난 계정입니다."),
                }.get(exc.code, exc.message)
                return render_template("login.html", error=error), exc.status
            session["login_ticket"] = ticket
            session["login_next"] = _safe_next(request.args.get("next"))
            return redirect(url_for("auth_pages.otp"))
        return render_template("login.html", error=error), 400
    return render_template("login.html", error=None)


@bp.route("/login/otp", methods=["GET", "POST"])
def otp():
    ticket = session.get("login_ticket")
    if not ticket:
        return redirect(url_for("auth_pages.login"))
    try:
        _row, user = service.ticket_user(ticket)
    except ApiError:
        session.pop("login_ticket", None)
        flash(_("로그인 시간이 지났습니다. 다시 로그인하세요."), "warning")
        return redirect(url_for("auth_pages.login"))
    qr = None
    if not user.otp_confirmed:
        # First login: the authenticator is enrolled by scanning this and entering one code.
        qr = segno.make(service.provisioning_uri(user), error="m").svg_data_uri(scale=5)
    error = None
    status = 200
    if request.method == "POST":
        code = (request.form.get("code") or "").strip().replace(" ", "")
        try:
            user, token = service.complete_login(ticket, code[:16], kind="web")
        except ApiError as exc:
            status = exc.status
            error = {
                "invalid_otp": _("인증 코드가 올바르지 않거나 이미 사용되었습니다."),
                "too_many_attempts": _("실패가 많아 잠시 제한되었습니다. %(s)s초 후 다시 시도하세요.",
                                       s=exc.headers.get("Retry-After", "?")),
            }.get(exc.code, exc.message)
            if exc.code == "invalid_ticket":
                session.pop("login_ticket", None)
                return redirect(url_for("auth_pages.login"))
        else:
            nxt = session.pop("login_next", None)
            session.pop("login_ticket", None)
            session["sid"] = token
            return redirect(_safe_next(nxt))
    secret = user.otp_secret if qr else None
    resp = make_response(render_template("otp.html", qr=qr, secret=secret, error=error,
                                         username=user.username), status)
    # The enrolment page shows the TOTP secret: never kept in a cache (back button, proxies).
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/logout", methods=["POST"])
def logout():
    auth = current_auth()
    if auth.session is not None and auth.problem is None:
        service.end_session(auth.session, auth.user)
    session.clear()
    flash(_("로그아웃되었습니다."), "info")
    return redirect(url_for("auth_pages.login"))


# --- admin: users ------------------------------------------------------------------

@bp.route("/admin/users")
@page_roles_required("admin")
def admin_users():
    args = {
        "q": (request.args.get("q") or "")[:64] or None,
        "role": request.args.get("role") if request.args.get("role") in ROLES else None,
        "locked": {"1": True, "0": False}.get(request.args.get("locked", "")),
        "after": request.args.get("after", type=int),
        "limit": 50,
    }
    users, nxt = search_users(current_auth().user.institution_id, args)
    return render_template("admin_users.html", users=users, next_after=nxt, args=args, roles=ROLES,
                           throttled=service.throttled_usernames())


@bp.route("/admin/users/new", methods=["GET", "POST"])
@page_roles_required("admin")
def admin_user_new():
    created = None
    error = None
    status = 200
    if request.method == "POST":
        admin = current_auth().user
        try:
            expires_at = _expiry_from_form(request.form.get("expires_on"))
            user = service.create_user(
                username=(request.form.get("username") or "").strip(),
                password=request.form.get("password") or "",
                role=request.form.get("role") or "",
                name=(request.form.get("name") or "").strip()[:100] or None,
                disability=request.form.get("disability") == "on",
                institution_id=admin.institution_id, expires_at=expires_at,
            )
            log_access("admin_action", user=admin, detail=f"create user {user.id} ({user.role})"
                       + (f" expires {clock.iso(expires_at)}" if expires_at else ""), commit=False)
            db.session.commit()
            created = user
        except ApiError as exc:
            db.session.rollback()
            error, status = exc.message, exc.status
    qr = None
    if created is not None:
        qr = segno.make(service.provisioning_uri(created), error="m").svg_data_uri(scale=4)
    return render_template("admin_user_new.html", roles=ROLES, created=created, qr=qr, error=error), status


def _expiry_from_form(raw: str | None):
    """``expires_on`` (a KST date, optional): the account works through that whole day and
    ends at the next day's 00:00 KST (REC-6: inspectors' accounts may expire). A date in
    the past is refused."""
    from datetime import date, timedelta

    text = (raw or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "invalid_request", _("사용 기한 날짜가 올바르지 않습니다.")) from None
    ends = clock.kst_midnight(day + timedelta(days=1))
    if ends <= clock.now():
        raise ApiError(400, "invalid_request", _("사용 기한이 이미 지났습니다."))
    return ends


def _admin_target(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.institution_id != current_auth().user.institution_id:
        raise not_found("user")
    return user


@bp.route("/admin/users/<int:user_id>/<action>", methods=["POST"])
@page_roles_required("admin")
def admin_user_action(user_id, action):
    user = _admin_target(user_id)
    admin = current_auth().user
    if action == "lock":
        service.set_locked(user, True, (request.form.get("reason") or "")[:500] or None)
        flash(_("%(u)s 계정을 잠갔습니다.", u=user.username), "info")
    elif action == "unlock":
        service.set_locked(user, False)
        flash(_("%(u)s 계정의 잠금을 풀었습니다.", u=user.username), "info")
    elif action == "reset-otp":
        service.reset_authenticator(user)
        flash(_("%(u)s 사용자는 다음 로그인 때 인증 앱을 다시 등록합니다.", u=user.username), "info")
    else:
        raise not_found("action")
    log_access("admin_action", user=admin, detail=f"{action} user {user.id}", commit=False)
    db.session.commit()
    return redirect(url_for("auth_pages.admin_users"))
