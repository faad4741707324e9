"""Users, roles, password + TOTP login, one session per ID (ATT-3, EXM-8, EXM-9, REC-4)."""
