"""JSON API: Auth and Users sections of API.md."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf, Range
from sqlalchemy import func, select

from lms import clock
from lms.audit.service import log_access
from lms.auth import service
from lms.auth.models import ROLES, User
from lms.db import db
from lms.errors import not_found
from lms.schemas import AwareDateTime, StrictBool, StrictInt
from lms.security import current_auth, roles_required

bp = APIBlueprint("auth_api", __name__, url_prefix="/api/v1", tag="Auth")


class LoginIn(Schema):
    username = fields.String(required=True, validate=Length(1, 64))
    password = fields.String(required=True, validate=Length(1, 1024))


class LoginOut(Schema):
    otp_required = fields.Boolean()
    ticket = fields.String()
    otp_enrolled = fields.Boolean()


class OtpIn(Schema):
    ticket = fields.String(required=True, validate=Length(1, 256))
    code = fields.String(required=True, validate=Length(1, 16))


class UserBrief(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()


class OtpOut(Schema):
    token = fields.String()
    user = fields.Nested(UserBrief)


class MeOut(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()
    name = fields.String(allow_none=True)
    disability = fields.Boolean()
    institution_id = fields.Integer()


class UserIn(Schema):
    username = fields.String(required=True, validate=Length(3, 64))
    password = fields.String(required=True, validate=Length(1, 1024))
    role = fields.String(required=True, validate=OneOf(ROLES))
    name = fields.String(required=True, validate=Length(1, 100))
    disability = StrictBool(load_default=False)
    phone = fields.String(validate=Length(0, 32))
    email = fields.Email()
    birth_date = fields.Date()
    expires_at = AwareDateTime()  # inspectors' accounts may expire (REC-6)


class UserCreatedOut(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()
    otp_secret = fields.String()


class UserOut(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()
    name = fields.String(allow_none=True)
    disability = fields.Boolean()
    locked = fields.Boolean()
    locked_reason = fields.String(allow_none=True)
    throttled_seconds = fields.Integer(allow_none=True)
    otp_enrolled = fields.Boolean()
    last_login_at = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True)


class UserRow(UserOut):
    """A user in a list. Its own class: apispec registers nested schemas by class, and the
    same class as a nested and a top-level response schema would be added twice."""


class UserListOut(Schema):
    users = fields.List(fields.Nested(UserRow))
    next = fields.Integer(allow_none=True)


class UserQuery(Schema):
    q = fields.String(validate=Length(0, 64))
    role = fields.String(validate=OneOf(ROLES))
    locked = StrictBool()
    # A cursor is a user id (INTEGER): a wider number would overflow the database (a 500).
    after = StrictInt(validate=Range(0, 2**31 - 1))
    limit = StrictInt(load_default=50)


class UserQueryLoose(UserQuery):
    # Query strings carry text: parse booleans and ints from text here.
    locked = fields.Boolean()
    after = fields.Integer(validate=Range(0, 2**31 - 1))
    limit = fields.Integer(load_default=50)


class LockIn(Schema):
    reason = fields.String(load_default=None, validate=Length(0, 500))


class OtpResetOut(Schema):
    otp_secret = fields.String()


@bp.post("/auth/login")
@bp.input(LoginIn, arg_name="body")
@bp.output(LoginOut)
def login(body):
    """Password step. Answers a ticket for the TOTP step (ATT-3, EXM-8)."""
    user, ticket = service.begin_login(body["username"], body["password"])
    return {"otp_required": True, "ticket": ticket, "otp_enrolled": user.otp_confirmed}


@bp.post("/auth/otp")
@bp.input(OtpIn, arg_name="body")
@bp.output(OtpOut)
def otp(body):
    """TOTP step: a bearer token; every other session of the user ends (EXM-9)."""
    user, token = service.complete_login(body["ticket"], body["code"], kind="api")
    return {"token": token, "user": {"id": user.id, "username": user.username, "role": user.role}}


@bp.post("/auth/logout")
@roles_required()
@bp.output({}, status_code=204)
def logout():
    auth = current_auth()
    service.end_session(auth.session, auth.user)
    return ""


@bp.get("/me")
@roles_required()
@bp.output(MeOut)
def me():
    u = current_auth().principal  # the columns read with the session: no ORM object
    return {"id": u.id, "username": u.username, "role": u.role, "name": u.name,
            "disability": u.disability, "institution_id": u.institution_id}


def _user_out(u: User, throttled: dict[str, int]) -> dict:
    return {
        "id": u.id, "username": u.username, "role": u.role, "name": u.name,
        "disability": u.disability, "locked": u.locked, "locked_reason": u.locked_reason,
        "throttled_seconds": throttled.get(u.username.lower()), "otp_enrolled": u.otp_confirmed,
        "last_login_at": clock.iso(u.last_login_at), "expires_at": clock.iso(u.expires_at),
    }


def _admin_user(user_id: int) -> User:
    admin = current_auth().user
    user = db.session.get(User, user_id)
    if user is None or user.institution_id != admin.institution_id:
        raise not_found("user")
    return user


@bp.post("/users")
@roles_required("admin")
@bp.input(UserIn, arg_name="body")
@bp.output(UserCreatedOut, status_code=201)
def create_user(body):
    """Create a user. ``otp_secret`` is returned once, for provisioning."""
    admin = current_auth().user
    birth = body.get("birth_date")
    user = service.create_user(
        username=body["username"], password=body["password"], role=body["role"], name=body["name"],
        disability=body["disability"], institution_id=admin.institution_id, phone=body.get("phone"),
        email=body.get("email"), birth_date=birth.isoformat() if birth else None,
        expires_at=body.get("expires_at"),
    )
    log_access("admin_action", user=admin, detail=f"create user {user.id} ({user.role})", commit=False)
    db.session.commit()
    return {"id": user.id, "username": user.username, "role": user.role, "otp_secret": user.otp_secret}


def search_users(institution_id: int, args: dict) -> tuple[list[User], int | None]:
    """Keyset-paged user search by username prefix/substring, role and lock state."""
    limit = max(1, min(int(args.get("limit") or 50), 500))
    stmt = select(User).where(User.institution_id == institution_id)
    if args.get("q"):
        q = args["q"].lower()
        if "\x00" in q:  # no username has one (and PostgreSQL refuses it in a query)
            return [], None
        stmt = stmt.where(func.lower(User.username).contains(q, autoescape=True))
    if args.get("role"):
        stmt = stmt.where(User.role == args["role"])
    if args.get("locked") is not None:
        stmt = stmt.where(User.locked == args["locked"])
    after = args.get("after")
    if after is not None and after >= 2**31:  # past every INTEGER id (the pages pass any int)
        return [], None
    if after is not None and after > 0:  # ids are positive: a lower cursor pages from the start
        stmt = stmt.where(User.id > after)
    rows = db.session.scalars(stmt.order_by(User.id).limit(limit + 1)).all()
    nxt = rows[limit - 1].id if len(rows) > limit else None
    return list(rows[:limit]), nxt


@bp.get("/users")
@roles_required("admin")
@bp.input(UserQueryLoose, location="query", arg_name="args")
@bp.output(UserListOut)
def list_users(args):
    """Search users; ``throttled_seconds`` shows accounts locked out by failed logins."""
    users, nxt = search_users(current_auth().user.institution_id, args)
    throttled = service.throttled_usernames()
    return {"users": [_user_out(u, throttled) for u in users], "next": nxt}


@bp.get("/users/<int:user_id>")
@roles_required("admin")
@bp.output(UserOut)
def get_user(user_id):
    return _user_out(_admin_user(user_id), service.throttled_usernames())


@bp.post("/users/<int:user_id>/lock")
@roles_required("admin")
@bp.input(LockIn, arg_name="body")
@bp.output(UserOut)
def lock_user(user_id, body):
    user = _admin_user(user_id)
    service.set_locked(user, True, body.get("reason"))
    log_access("admin_action", user=current_auth().user, detail=f"lock user {user.id}", commit=False)
    db.session.commit()
    return _user_out(user, {})


@bp.post("/users/<int:user_id>/unlock")
@roles_required("admin")
@bp.output(UserOut)
def unlock_user(user_id):
    user = _admin_user(user_id)
    service.set_locked(user, False)
    log_access("admin_action", user=current_auth().user, detail=f"unlock user {user.id}", commit=False)
    db.session.commit()
    return _user_out(user, {})


@bp.post("/users/<int:user_id>/reset-otp")
@roles_required("admin")
@bp.output(OtpResetOut)
def reset_otp(user_id):
    """New authenticator secret: the user enrols it (QR code) at the next login."""
    user = _admin_user(user_id)
    secret = service.reset_authenticator(user)
    log_access("admin_action", user=current_auth().user, detail=f"reset authenticator of user {user.id}",
               commit=False)
    db.session.commit()
    return {"otp_secret": secret}
