"""The paste parser: three line formats, per-line errors with line numbers, no half results."""

import datetime as dt
import zoneinfo

import pytest

from incidents.models import TimelineEntry
from incidents.timeline_paste import KINDS, MAX_LINES, guess_kind, parse

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
DAY = dt.date(2026, 3, 2)


def run(text, tz=PARIS):
    return parse(text, default_date=DAY, tz=tz)


def test_the_three_formats():
    """HH:MM text, YYYY-MM-DD HH:MM text and [HH:MM] name: text, in the author's zone."""
    result = run(
        "09:12 Alert fired for checkout latency\n"
        "2026-03-03 10:00 Opened the deploy log\n"
        "[10:05] maria: rolling back now\n"
    )
    assert result.ok and result.errors == ()
    first, second, third = result.entries
    assert first.at == dt.datetime(2026, 3, 2, 9, 12, tzinfo=PARIS)
    assert first.text == "Alert fired for checkout latency"
    assert second.at == dt.datetime(2026, 3, 3, 10, 0, tzinfo=PARIS)
    # A line with only a time takes the date given above it.
    assert third.at == dt.datetime(2026, 3, 3, 10, 5, tzinfo=PARIS)
    assert third.text == "maria: rolling back now"
    assert [e.line for e in result.entries] == [1, 2, 3]


def test_times_convert_to_utc_correctly():
    """09:12 in Paris in March is 08:12 UTC."""
    (entry,) = run("09:12 Alert").entries
    assert entry.at.astimezone(dt.UTC) == dt.datetime(2026, 3, 2, 8, 12, tzinfo=dt.UTC)


def test_bad_lines_are_reported_by_number_and_the_good_ones_kept_apart():
    """Each bad line gets its own message and line number; blank lines still count."""
    result = run(
        "09:12 Alert fired\n"
        "\n"
        "the deploy went out\n"
        "25:10 impossible hour\n"
        "2026-02-30 10:00 impossible day\n"
        "9.15 dotted time\n"
        "10:00\n"
        "10:05 Rolled back\n"
    )
    assert not result.ok
    assert [e.line for e in result.entries] == [1, 8]
    errors = {e.line: e.message for e in result.errors}
    assert sorted(errors) == [3, 4, 5, 6, 7]
    assert "does not start with a time" in errors[3]
    assert "25:10 is not a time of day" in errors[4]
    assert "2026-02-30 is not a date" in errors[5]
    assert "not written the way" in errors[6]
    assert "no text after the time" in errors[7]
    assert result.errors[0].raw == "the deploy went out"


def test_indented_lines_continue_the_entry_above():
    """A chat message over several lines stays one entry."""
    result = run("[09:14] maria: rolling back\n  it is the config push\n\t(confirmed)\n09:20 Done")
    assert result.ok
    assert result.entries[0].text == "maria: rolling back\nit is the config push\n(confirmed)"
    assert len(result.entries) == 2


def test_indented_line_without_an_entry_above_is_an_error():
    """Continuation lines need something to continue."""
    result = run("   just some words\n09:00 Alert")
    assert [e.line for e in result.errors] == [1]
    assert "continues the entry above" in result.errors[0].message


def test_lines_under_a_bad_line_are_not_reported_twice():
    """The continuation of a bad line belongs to that line's error."""
    result = run("oops no time\n  continued\n09:00 ok")
    assert [e.line for e in result.errors] == [1]


def test_past_midnight_rolls_to_the_next_day():
    """23:58 then 00:03 is four minutes later, not a day earlier."""
    result = run("23:58 Alert\n00:03 Paged the on-call")
    assert result.entries[1].at == dt.datetime(2026, 3, 3, 0, 3, tzinfo=PARIS)


def test_a_slightly_earlier_time_stays_on_the_same_day():
    """Notes out of order by minutes are not taken for the next day."""
    result = run("10:05 Rolled back\n10:01 Noticed errors")
    assert result.entries[1].at.date() == DAY


def test_kinds_given_or_guessed():
    """An explicit kind wins; otherwise a guess; chat lines default to communication."""
    result = run(
        "09:12 detection: customers reported errors\n"
        "09:13 [status update] Investigating\n"
        "09:20 Rolled back the config push\n"
        "09:30 All clear, resolved\n"
        "[09:31] ana: thanks all\n"
        "09:32 Wrote notes\n"
    )
    kinds = [(e.kind, e.kind_given) for e in result.entries]
    assert kinds == [
        ("detection", True), ("status_update", True), ("mitigation", False),
        ("resolution", False), ("communication", False), ("action", False),
    ]  # fmt: skip
    assert result.entries[0].text == "customers reported errors"


def test_a_speaker_named_like_a_kind_is_still_a_speaker_in_chat_lines():
    """In "[09:00] alert: …" the name is a person or bot, kept in the text."""
    (entry,) = run("[09:00] alert: disk full on db-1").entries
    assert entry.text == "alert: disk full on db-1"


def test_seconds_and_separators_are_accepted():
    """Copied logs often carry seconds or a dash after the time."""
    result = run("09:12:45 - Alert fired\n2026-03-02T09:13 Paged\n09:14: Acknowledged")
    assert result.ok
    assert [e.at.minute for e in result.entries] == [12, 13, 14]
    assert result.entries[0].text == "Alert fired"


def test_empty_paste_is_an_error_not_an_empty_success():
    """Nothing to add is said, not silently accepted."""
    result = run("\n  \n")
    assert not result.ok and result.errors


def test_too_many_lines():
    """A huge paste is refused as a whole."""
    result = run("09:00 x\n" * (MAX_LINES + 1))
    assert not result.entries and "at most" in result.errors[0].message


@pytest.mark.parametrize(
    ("text", "kind"),
    [("Rolled back to v41", "mitigation"), ("Posted on the status page", "status_update"),
     ("PagerDuty alert fired", "alert"), ("Escalated to the database team", "escalation"),
     ("Decided to fail over", "mitigation"), ("We decided to wait", "decision"),
     ("Restarted nothing", "mitigation"), ("Made coffee", "action")],
)  # fmt: skip
def test_guesses(text, kind):
    """Guesses are a convenience the preview lets the author change."""
    assert guess_kind(text) == kind


def test_kinds_match_the_model():
    """The parser's kinds are the stored values of TimelineEntry.Kind."""
    assert set(KINDS) == set(TimelineEntry.Kind.values)
