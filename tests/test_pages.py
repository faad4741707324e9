"""HTML pages through the Flask test client: language, CSRF, the login flow's errors and
redirects, Korean error pages, security headers and cookies, open-redirect protection."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from lms.auth.models import User

PASSWORD = "correct-horse-9"
SESSION_ENDED_KO = "이 계정으로 다른 곳에서 로그인하여 현재 세션이 종료되었습니다."
# werkzeug's default English descriptions must never reach a Korean page.
WERKZEUG_ENGLISH = (
    "The requested URL was not found on the server",
    "The CSRF token is missing",
    "The method is not allowed for the requested URL",
    "You don't have the permission",
    "not found",
)


def csrf_token(resp) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert m, "the page has no csrf_token input"
    return m.group(1)


def location(resp) -> tuple[str, dict]:
    """Path and query (parsed) of a redirect's Location."""
    loc = urlsplit(resp.headers["Location"])
    assert loc.scheme == "" and loc.netloc == "", resp.headers["Location"]
    return loc.path, parse_qs(loc.query)


def password_step(client, username: str, password: str = PASSWORD, next_: str | None = None):
    token = csrf_token(client.get("/login"))
    url = "/login" + (f"?{urlencode({'next': next_})}" if next_ is not None else "")
    return client.post(url, data={"csrf_token": token, "username": username, "password": password})


def web_login(client, users, username: str, next_: str | None = None):
    """The whole page flow (password, then OTP); returns the OTP step's answer."""
    r = password_step(client, username, users.passwords[username], next_)
    assert r.status_code == 302 and location(r)[0] == "/login/otp", r.get_data(as_text=True)
    token = csrf_token(client.get("/login/otp"))
    return client.post("/login/otp", data={"csrf_token": token, "code": users.code(username)})


def text(resp) -> str:
    return resp.get_data(as_text=True)


# --- language ------------------------------------------------------------------------

def test_login_page_is_korean_by_default(client):
    r = client.get("/login")
    assert r.status_code == 200
    body = text(r)
    assert '<html lang="ko">' in body
    assert "<title>로그인</title>" in body
    assert "<h1>로그인</h1>" in body
    assert 'name="csrf_token"' in body
    assert "Log in" not in body


def test_lang_parameter_switches_to_english_and_is_remembered(client):
    r = client.get("/login?lang=en")
    assert r.status_code == 200
    assert '<html lang="en">' in text(r)
    assert "<h1>Log in</h1>" in text(r)
    assert "로그인</h1>" not in text(r)
    assert any(c.startswith("lms_lang=en;") for c in r.headers.getlist("Set-Cookie"))
    # The cookie carries the choice to the next page; ?lang=ko switches back.
    assert "<h1>Log in</h1>" in text(client.get("/login"))
    assert "<h1>로그인</h1>" in text(client.get("/login?lang=ko"))
    assert "<h1>로그인</h1>" in text(client.get("/login"))


def test_accept_language_english_gets_english(client):
    r = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in text(r) and "<h1>Log in</h1>" in text(r)
    r = client.get("/login", headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"})
    assert '<html lang="ko">' in text(r) and "<h1>로그인</h1>" in text(r)


# --- CSRF ----------------------------------------------------------------------------

def test_form_post_without_csrf_token_is_refused_with_korean_page(client, users):
    users.create("kim01")
    client.get("/login")  # a session exists, the form's token is simply not sent
    r = client.post("/login", data={"username": "kim01", "password": PASSWORD})
    assert r.status_code == 400
    body = text(r)
    assert r.mimetype == "text/html"
    assert '<html lang="ko">' in body
    assert "잘못된 요청입니다" in body
    assert "보안 토큰이 없거나 만료되었습니다" in body
    for english in WERKZEUG_ENGLISH:
        assert english not in body
    # Nothing happened: no login ticket was handed out.
    with client.session_transaction() as sess:
        assert "login_ticket" not in sess
    assert client.get("/login/otp").status_code == 302


def test_form_post_with_wrong_csrf_token_is_refused(client, users):
    users.create("kim01")
    client.get("/login")
    r = client.post("/login", data={"csrf_token": "not-a-token", "username": "kim01", "password": PASSWORD})
    assert r.status_code == 400
    assert "보안 토큰이 없거나 만료되었습니다" in text(r)


def test_form_post_with_csrf_token_goes_to_otp_page(client, users):
    users.create("kim01")
    r = password_step(client, "kim01")
    assert r.status_code == 302
    assert location(r)[0] == "/login/otp"
    r = client.get("/login/otp")
    assert r.status_code == 200
    body = text(r)
    assert "<h1>2단계 인증</h1>" in body
    # First login: the QR code and the secret are shown for enrolment.
    assert 'data-testid="otp-qr"' in body and 'src="data:image/svg+xml' in body
    assert f'data-testid="otp-secret">{users.secrets["kim01"]}<' in body


def test_csrf_error_on_cookie_authenticated_api_call_stays_json(client, users):
    users.create("kim01")
    assert location(web_login(client, users, "kim01"))[0] == "/"
    r = client.post("/api/v1/auth/logout")
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "invalid_request"


# --- the login flow ------------------------------------------------------------------

def test_wrong_password_shows_korean_error_and_401(client, users):
    users.create("kim01")
    r = password_step(client, "kim01", password="wrong-password-1")
    assert r.status_code == 401
    body = text(r)
    assert '<div class="flash error" role="alert">아이디 또는 비밀번호가 올바르지 않습니다.</div>' in body
    assert "<h1>로그인</h1>" in body


def test_unknown_username_gets_the_same_answer_as_a_wrong_password(client, users):
    users.create("kim01")
    wrong = password_step(client, "kim01", password="wrong-password-1")
    unknown = password_step(client, "nobody99", password="wrong-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert text(wrong).replace(csrf_token(wrong), "") == text(unknown).replace(csrf_token(unknown), "")


def test_empty_fields_show_korean_error(client):
    token = csrf_token(client.get("/login"))
    r = client.post("/login", data={"csrf_token": token, "username": " ", "password": ""})
    assert r.status_code == 400
    assert "아이디와 비밀번호를 입력하세요." in text(r)


def test_otp_page_without_ticket_redirects_to_login(client):
    r = client.get("/login/otp")
    assert r.status_code == 302
    assert location(r) == ("/login", {})
    token = csrf_token(client.get("/login"))
    r = client.post("/login/otp", data={"csrf_token": token, "code": "123456"})
    assert r.status_code == 302
    assert location(r) == ("/login", {})


def test_wrong_otp_code_shows_korean_error_and_keeps_the_ticket(client, users):
    users.create("kim01")
    password_step(client, "kim01")
    token = csrf_token(client.get("/login/otp"))
    good = users.code("kim01")
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    r = client.post("/login/otp", data={"csrf_token": token, "code": bad})
    assert r.status_code == 401
    assert "인증 코드가 올바르지 않거나 이미 사용되었습니다." in text(r)
    # The same ticket still works with the right code.
    r = client.post("/login/otp", data={"csrf_token": token, "code": good})
    assert r.status_code == 302 and location(r)[0] == "/"


def test_a_used_code_is_refused_at_the_next_login(client, users, app):
    users.create("kim01")
    password_step(client, "kim01")
    token = csrf_token(client.get("/login/otp"))
    code = users.code("kim01")
    assert location(client.post("/login/otp", data={"csrf_token": token, "code": code}))[0] == "/"
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/"))})
    password_step(client, "kim01")
    token = csrf_token(client.get("/login/otp"))
    r = client.post("/login/otp", data={"csrf_token": token, "code": code})
    assert r.status_code == 401
    assert "인증 코드가 올바르지 않거나 이미 사용되었습니다." in text(r)
    # Enrolled now: no QR code, no secret on the second login.
    assert 'data-testid="otp-qr"' not in text(r) and users.secrets["kim01"] not in text(r)


def test_login_reaches_dashboard_and_logout_ends_the_session(client, users):
    users.create("kim01")
    r = web_login(client, users, "kim01")
    assert r.status_code == 302 and location(r) == ("/", {})
    r = client.get("/")
    assert r.status_code == 200
    assert 'data-testid="dashboard" data-role="learner"' in text(r)
    assert "<h1>나의 강의실</h1>" in text(r)
    r = client.post("/logout", data={"csrf_token": csrf_token(r)})
    assert r.status_code == 302 and location(r)[0] == "/login"
    r = client.get("/login")
    assert "로그아웃되었습니다." in text(r)
    assert client.get("/").status_code == 302


def test_logout_needs_post(client):
    r = client.get("/logout")
    assert r.status_code == 405
    body = text(r)
    assert '<html lang="ko">' in body and "이 방식으로는 요청할 수 없습니다." in body
    for english in WERKZEUG_ENGLISH:
        assert english not in body


def test_login_elsewhere_ends_this_page_session_with_korean_notice(app, users):
    users.create("kim01")
    first, second = app.test_client(), app.test_client()
    web_login(first, users, "kim01")
    assert first.get("/").status_code == 200
    web_login(second, users, "kim01")
    r = first.get("/")
    assert r.status_code == 302 and location(r)[0] == "/login"
    r = first.get(r.headers["Location"])
    assert SESSION_ENDED_KO in text(r)
    assert second.get("/").status_code == 200


# --- redirects -----------------------------------------------------------------------

def test_unauthenticated_home_redirects_to_login_with_next(client):
    r = client.get("/")
    assert r.status_code == 302
    path, query = location(r)
    assert path == "/login"
    assert urlsplit(query["next"][0]).path == "/"


def test_next_brings_the_user_back_after_login(client, users):
    users.create("admin1", "admin", name="관리자")
    r = client.get("/admin/users?role=learner")
    path, query = location(r)
    assert path == "/login" and query["next"] == ["/admin/users?role=learner"]
    r = web_login(client, users, "admin1", next_=query["next"][0])
    assert r.status_code == 302
    assert r.headers["Location"] == "/admin/users?role=learner"


@pytest.mark.parametrize("target", [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/\t/evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
])
def test_open_redirect_is_refused(client, users, target):
    users.create("kim01")
    r = web_login(client, users, "kim01", next_=target)
    assert r.status_code == 302
    assert r.headers["Location"] == "/"


# --- error pages ---------------------------------------------------------------------

def test_learner_gets_korean_403_page_on_admin_pages(client, users):
    users.create("kim01")
    web_login(client, users, "kim01")
    for url in ("/admin/users", "/admin/users/new"):
        r = client.get(url)
        assert r.status_code == 403
        body = text(r)
        assert r.mimetype == "text/html"
        assert '<html lang="ko">' in body
        assert "접근 권한이 없습니다" in body
        assert "이 역할로는 접근할 수 없습니다." in body
        for english in WERKZEUG_ENGLISH:
            assert english not in body
    r = client.get("/admin/users?lang=en")
    assert r.status_code == 403
    assert '<html lang="en">' in text(r) and "Access denied" in text(r)


def test_learner_cannot_act_on_users(client, users, app):
    users.create("kim01")
    target = users.create("park02")
    web_login(client, users, "kim01")
    token = csrf_token(client.get("/"))
    r = client.post(f"/admin/users/{target}/lock", data={"csrf_token": token})
    assert r.status_code == 403
    with app.app_context():
        from lms.db import db

        assert db.session.get(User, target).locked is False


def test_unknown_page_is_a_korean_404_page(client):
    r = client.get("/no/such/page")
    assert r.status_code == 404
    body = text(r)
    assert r.mimetype == "text/html"
    assert '<html lang="ko">' in body
    assert "페이지를 찾을 수 없습니다" in body
    assert "요청한 페이지가 없습니다. 주소를 확인하세요." in body
    for english in WERKZEUG_ENGLISH:
        assert english not in body


def test_unknown_page_in_english(client):
    r = client.get("/no/such/page?lang=en")
    assert r.status_code == 404
    body = text(r)
    assert '<html lang="en">' in body
    assert "Page not found" in body
    assert "페이지를 찾을 수 없습니다" not in body


def test_unknown_user_action_page_is_korean_404(client, users):
    users.create("admin1", "admin", name="관리자")
    web_login(client, users, "admin1")
    token = csrf_token(client.get("/admin/users"))
    r = client.post("/admin/users/999999/lock", data={"csrf_token": token})
    assert r.status_code == 404
    assert "요청한 페이지가 없습니다. 주소를 확인하세요." in text(r)
    assert "user not found" not in text(r)


def test_api_errors_stay_json_and_english(client):
    r = client.get("/api/v1/no-such-endpoint")
    assert r.status_code == 404
    assert r.get_json()["error"]["code"] == "not_found"
    r = client.get("/api/v1/me")
    assert r.status_code == 401
    assert r.get_json()["error"]["code"] == "unauthorized"


# --- headers and cookies -------------------------------------------------------------

def _assert_security_headers(r):
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert "object-src 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"


def test_security_headers_on_pages(client, users):
    _assert_security_headers(client.get("/login"))
    _assert_security_headers(client.get("/no/such/page"))
    users.create("kim01")
    _assert_security_headers(web_login(client, users, "kim01"))
    r = client.get("/")
    assert r.status_code == 200
    _assert_security_headers(r)
    # Personal pages are not kept in caches.
    assert "no-store" in r.headers["Cache-Control"]


def test_session_cookie_is_httponly_and_samesite(client, users):
    r = client.get("/login")
    cookies = r.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("lms_session="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=Lax" in session_cookie
    users.create("kim01")
    r = web_login(client, users, "kim01")
    session_cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("lms_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie


def test_language_cookie_is_httponly(client):
    r = client.get("/login?lang=en")
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("lms_lang="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_enrolment_page_with_the_secret_is_not_cached(client, users):
    users.create("kim01")
    password_step(client, "kim01")
    r = client.get("/login/otp")
    assert users.secrets["kim01"] in text(r)
    assert "no-store" in r.headers.get("Cache-Control", "")
