"""The report's period (UTC days) and page (self-contained, escaped), on tiny hand-made input."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ecgmon.errors import ConfigurationError
from ecgmon.report.page import Picture, Section, Table, render_html, render_markdown
from ecgmon.report.period import report_period

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_days_end_yesterday_in_utc_whatever_the_local_zone():
    # 01:30 on Dec 2 in UTC+3 is 22:30 on Dec 1 in UTC: yesterday is Nov 30
    now = datetime(2026, 12, 2, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    period = report_period(None, 3, now)
    assert (period.first, period.last) == (date(2026, 11, 28), date(2026, 11, 30))
    assert period.start == datetime(2026, 11, 28, tzinfo=UTC)
    assert period.end == datetime(2026, 12, 1, tzinfo=UTC)
    assert period.days == [date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30)]
    assert period.operations_end == now  # runs and quarantine: until the report is made


def test_one_day_and_bad_requests():
    now = datetime(2026, 12, 2, tzinfo=UTC)
    assert str(report_period(date(2026, 11, 5), None, now)) == "2026-11-05"
    assert report_period(None, None, now).days == [date(2026, 12, 1)]
    for day, days in ((date(2026, 11, 5), 2), (None, 0), (None, 400)):
        with pytest.raises(ConfigurationError):
            report_period(day, days, now)


def test_page_embeds_pictures_escapes_text_and_loads_nothing():
    section = Section(
        "Runs <failed>",
        notes=["a & b"],
        pictures=[Picture(PNG, 'alt "x"', "caption <i>")],
        tables=[Table(["run", "beats", "rate"], [["<script>", 12, 0.125]])],
    )
    page = render_html("report", [section])
    assert page.count('<img src="data:image/png;base64,') == 1
    assert "<script>" not in page and "&lt;script&gt;" in page and "a &amp; b" in page
    assert '<td class="n">12</td>' in page and '<td class="n">0.125</td>' in page
    assert "http" not in page
    markdown = render_markdown("report", [section])
    assert "](data:image/png;base64," in markdown and "| &lt;script&gt; | 12 | 0.125 |" in markdown
