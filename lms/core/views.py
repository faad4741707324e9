"""Home page (a dashboard per role) and the language switch."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from markupsafe import Markup

from lms.security import current_auth, page_roles_required

bp = Blueprint("core_pages", __name__, template_folder="templates")

def dashboard_links(role: str) -> list[tuple[str, str]]:
    """Links of the home page for ``role``: the ``DASHBOARD_LINKS`` (role → [(endpoint,
    Korean label)]) of every module that registered a blueprint, in registration order."""
    import sys

    links, seen = [], set()
    for blueprint in current_app.blueprints.values():
        if blueprint.import_name in seen:
            continue
        seen.add(blueprint.import_name)
        mod = sys.modules.get(blueprint.import_name)
        for endpoint, label in getattr(mod, "DASHBOARD_LINKS", {}).get(role, []):
            if endpoint in current_app.view_functions and (endpoint, label) not in links:
                links.append((endpoint, label))
    return links


def dashboard_panels(user) -> list[Markup]:
    """HTML panels of the home page for ``user``: each registering module's
    ``DASHBOARD_PANELS`` (role → [function(user) → HTML])."""
    import sys

    panels, seen = [], set()
    for blueprint in current_app.blueprints.values():
        if blueprint.import_name in seen:
            continue
        seen.add(blueprint.import_name)
        mod = sys.modules.get(blueprint.import_name)
        for panel in getattr(mod, "DASHBOARD_PANELS", {}).get(user.role, []):
            panels.append(Markup(panel(user)))
    return panels


@bp.route("/")
@page_roles_required()
def home():
    user = current_auth().user
    return render_template("dashboard.html", user=user, links=dashboard_links(user.role),
                           panels=dashboard_panels(user))


@bp.after_app_request
def remember_language(resp):
    lang = request.args.get("lang")
    if lang in current_app.config["LANGUAGES"] and request.cookies.get("lms_lang") != lang:
        resp.set_cookie("lms_lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return resp
