"""Translation helpers. The UI's source language is Korean; ``lms/translations/en`` holds
the English catalog (``make extract-messages`` refreshes it, ``make translations`` compiles).
"""
from __future__ import annotations

from pathlib import Path

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here (it is translated where it
    is shown, e.g. ``_(label)`` in a template)."""
    return message


def compile_catalogs() -> None:
    """Compile every ``messages.po`` whose ``.mo`` is missing or older (tests call this so
    a bare ``pytest`` sees the same English pages as ``make test``)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f)
        with mo.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=True)
