"""Helpers of the compliance, proxy-detection and complaint suites (issue 6, items 4–6)."""
from __future__ import annotations

import re


def csrf_from(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m
    return m.group(1)


def web_login(client, users, username: str) -> None:
    """Log ``client`` in through the login pages (password, then a TOTP code)."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"csrf_token": token, "username": username, "password": users.passwords[username]})
    assert r.status_code == 302, r.get_data(as_text=True)
    page = client.get("/login/otp").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login/otp", data={"csrf_token": token, "code": users.code(username)})
    assert r.status_code == 302, r.get_data(as_text=True)
