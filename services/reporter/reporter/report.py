"""The report email's content: pure functions from counts to subject, text and HTML.

The HTML is written for mail clients, not browsers: tables, inline styles and bars
whose length is a CSS width in pixels (no images, no scripts, no external CSS), so it
renders the same in Gmail, Outlook and a terminal mail reader's HTML view. The plain
part carries the same numbers and an ASCII bar chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Literal

from reporter.periods import Period

ReportKind = Literal["daily", "weekly", "monthly", "now"]

TEXT_BAR_WIDTH = 40
HTML_BAR_WIDTH_PX = 240
DELIVERED_COLOUR = "#2e7d32"
FAILED_COLOUR = "#c62828"


@dataclass(frozen=True)
class ProfileCounts:
    profile_id: str
    title: str
    delivered: int
    failed: int


@dataclass(frozen=True)
class DayCounts:
    day: date
    delivered: int
    failed: int


@dataclass(frozen=True)
class ReportData:
    account_name: str
    kind: ReportKind
    period: Period
    profiles: list[ProfileCounts]
    days: list[DayCounts]  # every day of the period, zero-filled

    @property
    def delivered(self) -> int:
        return sum(p.delivered for p in self.profiles)

    @property
    def failed(self) -> int:
        return sum(p.failed for p in self.profiles)

    @property
    def has_chart(self) -> bool:
        return len(self.days) > 1


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


def period_label(data: ReportData) -> str:
    """The period in the account's own calendar, e.g. ``Mon 23 Nov 2026 to Sun 29 Nov 2026``."""
    period = data.period
    if period.first_day == period.last_day:
        span = _day(period.first_day)
    elif period.frequency == "monthly" and data.kind != "now":
        span = f"{period.first_day:%B %Y}"
    else:
        span = f"{_day(period.first_day)} to {_day(period.last_day)}"
    if data.kind == "now":
        span += " (so far)"
    return f"{span}, {period.timezone}"


def subject(data: ReportData) -> str:
    title = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly", "now": "Current"}
    # ASCII only: an encoded word in the subject invites odd folding in some clients.
    return (
        f"{title[data.kind]} callback report for {data.account_name} - {period_label(data)}:"
        f" {data.delivered} delivered, {data.failed} failed"
    )


def _bar(value: int, peak: int, width: int) -> int:
    if value <= 0 or peak <= 0:
        return 0
    return max(1, round(value * width / peak))


def render_text(data: ReportData) -> str:
    lines = [
        f"Callback report for {data.account_name}",
        f"Period: {period_label(data)}",
        "",
        f"Delivered: {data.delivered}",
        f"Failed:    {data.failed}",
        f"Total:     {data.delivered + data.failed}",
        "",
        "Per profile",
    ]
    if not data.profiles:
        lines.append("  (no callbacks in this period)")
    width = max((len(p.title) for p in data.profiles), default=0)
    for p in data.profiles:
        lines.append(f"  {p.title:<{width}}  delivered {p.delivered:>7}  failed {p.failed:>7}")
    if data.has_chart:
        peak = max(d.delivered + d.failed for d in data.days)
        lines += ["", "Per day (# delivered, ! failed)"]
        for d in data.days:
            bar = "#" * _bar(d.delivered, peak, TEXT_BAR_WIDTH)
            bar += "!" * _bar(d.failed, peak, TEXT_BAR_WIDTH)
            lines.append(
                f"  {d.day:%a %d %b}  {bar:<{TEXT_BAR_WIDTH + 1}} {d.delivered} / {d.failed}"
            )
    lines += ["", "Counts are of callbacks whose final attempt fell in the period."]
    return "\n".join(lines) + "\n"


def _cell(text: str, *, right: bool = False, bold: bool = False) -> str:
    style = "padding:4px 8px;border-bottom:1px solid #e0e0e0;"
    style += "text-align:right;" if right else "text-align:left;"
    style += "font-weight:bold;" if bold else ""
    return f'<td style="{style}">{text}</td>'


def _chart(data: ReportData) -> str:
    peak = max(d.delivered + d.failed for d in data.days)
    rows = []
    for d in data.days:
        bars = ""
        for value, colour in ((d.delivered, DELIVERED_COLOUR), (d.failed, FAILED_COLOUR)):
            px = _bar(value, peak, HTML_BAR_WIDTH_PX)
            if px:
                bars += (
                    f'<td style="background:{colour};width:{px}px;height:12px;'
                    f'font-size:1px;line-height:1px;">&nbsp;</td>'
                )
        bars = bars or '<td style="font-size:1px;line-height:1px;">&nbsp;</td>'
        rows.append(
            "<tr>"
            + _cell(escape(f"{d.day:%a %d %b}"))
            + '<td style="padding:4px 8px;"><table role="presentation" cellpadding="0"'
            f' cellspacing="0" style="border-collapse:collapse;"><tr>{bars}</tr></table></td>'
            + _cell(f"{d.delivered} / {d.failed}", right=True)
            + "</tr>"
        )
    return (
        '<h3 style="margin:24px 0 8px;">Per day</h3>'
        f'<p style="margin:0 0 8px;color:#555;"><span style="color:{DELIVERED_COLOUR};">&#9632;'
        f'</span> delivered &nbsp; <span style="color:{FAILED_COLOUR};">&#9632;</span> failed</p>'
        '<table role="presentation" cellpadding="0" cellspacing="0"'
        ' style="border-collapse:collapse;">' + "".join(rows) + "</table>"
    )


def render_html(data: ReportData) -> str:
    profile_rows = "".join(
        "<tr>"
        + _cell(escape(p.title))
        + _cell(str(p.delivered), right=True)
        + _cell(str(p.failed), right=True)
        + "</tr>"
        for p in data.profiles
    ) or ("<tr>" + _cell("No callbacks in this period") + _cell("") + _cell("") + "</tr>")
    total = (
        "<tr>"
        + _cell("Total", bold=True)
        + _cell(str(data.delivered), right=True, bold=True)
        + _cell(str(data.failed), right=True, bold=True)
        + "</tr>"
    )
    head = "<tr>" + _cell("Profile", bold=True) + _cell("Delivered", right=True, bold=True)
    head += _cell("Failed", right=True, bold=True) + "</tr>"
    chart = _chart(data) if data.has_chart else ""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#212121;">'
        f'<h2 style="margin:0 0 4px;">Callback report for {escape(data.account_name)}</h2>'
        f'<p style="margin:0 0 16px;color:#555;">{escape(period_label(data))}</p>'
        f'<p style="margin:0 0 16px;font-size:16px;">'
        f'<span style="color:{DELIVERED_COLOUR};font-weight:bold;">{data.delivered} delivered'
        f'</span> &middot; <span style="color:{FAILED_COLOUR};font-weight:bold;">{data.failed}'
        f" failed</span> &middot; {data.delivered + data.failed} total</p>"
        '<table role="presentation" cellpadding="0" cellspacing="0"'
        f' style="border-collapse:collapse;">{head}{profile_rows}{total}</table>'
        f"{chart}"
        '<p style="margin:24px 0 0;color:#757575;font-size:12px;">Counts are of callbacks'
        " whose final attempt fell in the period.</p></body></html>"
    )
