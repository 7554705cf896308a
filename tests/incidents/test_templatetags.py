"""The fast date tag writes exactly what Django's date filter would."""

import datetime as dt

import pytest
from django.template import Context, Template
from django.utils import timezone

from incidents.templatetags.debrief import day

SLOW = Template("""<time datetime="{{ value|date:'c' }}">{{ value|date:"j M Y" }}</time>""")
SLOW_DATE = Template(
    """<time datetime="{{ value|date:'Y-m-d' }}">{{ value|date:"j M Y" }}</time>"""
)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 3, 2, 9, 12, tzinfo=dt.UTC),
        dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 0, 0, 1, 123456, tzinfo=dt.UTC),
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles"])
def test_datetimes_match_the_date_filter(value, zone):
    with timezone.override(zone):
        assert day(value) == SLOW.render(Context({"value": value}))


@pytest.mark.parametrize("value", [dt.date(2026, 1, 5), dt.date(2026, 9, 30)])
def test_dates_match_the_date_filter(value):
    assert day(value) == SLOW_DATE.render(Context({"value": value}))


def test_nothing_for_no_value():
    assert day(None) == ""


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_time_style_matches_the_date_filter(zone):
    value = dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.UTC)
    slow = Template("""<time datetime="{{ value|date:'c' }}">{{ value|date:"j M H:i" }}</time>""")
    with timezone.override(zone):
        assert day(value, "time") == slow.render(Context({"value": value}))
