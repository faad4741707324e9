"""The compliance report as a PDF for the inspection file (reportlab, built-in Korean CID
font: no font files). Rule IDs are set in Helvetica so they stay searchable as plain text."""
from __future__ import annotations

import io
import json
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from lms import clock

FONT = "HYSMyeongJo-Medium"
LATIN = "Helvetica-Bold"
STATUS_TEXT = {"pass": "적합", "fail": "부적합", "na": "해당 없음", "not_checkable": "데이터로 확인 불가"}
STATUS_COLOURS = {"pass": colors.HexColor("#e6f4ea"), "fail": colors.HexColor("#fde7e9"),
                  "na": colors.HexColor("#f1f3f4"), "not_checkable": colors.HexColor("#fff8e1")}
EVIDENCE_CHARS = 400


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def evidence_text(evidence: dict) -> str:
    """A short, readable form of a verdict's evidence (the page and the API carry it whole)."""
    if not evidence:
        return ""
    text = json.dumps(evidence, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS] + " …"


def render_pdf(report: dict, *, institution: str, generated_by: str) -> bytes:
    font = _font()
    base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=11)
    small = ParagraphStyle("small", parent=base, fontSize=7, leading=9, textColor=colors.HexColor("#444444"))
    title = ParagraphStyle("title", parent=base, fontSize=15, leading=20, spaceAfter=4)
    head = ParagraphStyle("head", parent=base, fontSize=9, leading=12)
    c = report["course"]
    generated = clock.to_kst(report["generated_at"]).strftime("%Y-%m-%d %H:%M:%S KST")
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=14 * mm,
                            bottomMargin=14 * mm, title=f"Compliance report {c['code']} {report['term']}",
                            author=institution, subject="credit-bank compliance report")
    counts = report["counts"]
    story = [
        Paragraph(escape("학습과정 운영 점검 보고서 (Compliance report)"), title),
        Paragraph(escape(f"기관: {institution}"), head),
        Paragraph(escape(f"과정: {c['title']} ({c['code']}) · {c['credits']}학점 · {c['weeks']}주 · "
                         f"{c['starts_on']} ~ {c['ends_on']}"), head),
        Paragraph(escape(f"학기: {report['term']} · 생성: {generated} · 생성자: {generated_by}"), head),
        Paragraph(escape(f"적합 {counts['pass']} · 부적합 {counts['fail']} · 해당 없음 {counts['na']} · "
                         f"데이터로 확인 불가 {counts['not_checkable']}"), head),
        Spacer(1, 4 * mm),
    ]
    rows = [[Paragraph("<b>규칙</b>", base), Paragraph("판정", base), Paragraph("근거", base)]]
    styles = [("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
              ("VALIGN", (0, 0), (-1, -1), "TOP"), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dddddd"))]
    for i, v in enumerate(report["verdicts"], start=1):
        detail = [Paragraph(escape(v["summary"]), base)]
        ev = evidence_text(v.get("evidence") or {})
        if ev:
            detail.append(Paragraph(escape(ev), small))
        rows.append([Paragraph(f'<font name="{LATIN}">{escape(v["rule"])}</font>', base),
                     Paragraph(escape(STATUS_TEXT.get(v["status"], v["status"])), base), detail])
        styles.append(("BACKGROUND", (1, i), (1, i), STATUS_COLOURS.get(v["status"], colors.white)))
    table = Table(rows, colWidths=[20 * mm, 24 * mm, 138 * mm], repeatRows=1)
    table.setStyle(TableStyle(styles))
    story.append(table)

    def footer(canvas, _doc):
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.drawString(14 * mm, 8 * mm, f"{c['code']} {report['term']} · {generated} · {canvas.getPageNumber()}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
