"""Home page (a dashboard per role) and the language switch."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from lms.security import current_auth, page_roles_required

bp = Blueprint("core_pages", __name__, template_folder="templates")

# Dashboard sections by role; capability packages add their own links through
# ``DASHBOARD_LINKS`` (role → list of (endpoint, label)).
DASHBOARD_LINKS: dict[str, list[tuple[str, str]]] = {
    "admin": [("auth_pages.admin_users", "사용자 관리")],
}


@bp.route("/")
@page_roles_required()
def home():
    user = current_auth().user
    links = []
    for endpoint, label in DASHBOARD_LINKS.get(user.role, []):
        if endpoint in current_app.view_functions:
            links.append((endpoint, label))
    return render_template("dashboard.html", user=user, links=links)


@bp.after_app_request
def remember_language(resp):
    lang = request.args.get("lang")
    if lang in current_app.config["LANGUAGES"] and request.cookies.get("lms_lang") != lang:
        resp.set_cookie("lms_lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return resp
