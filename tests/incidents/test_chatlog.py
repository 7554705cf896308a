"""Chat logs into timelines: parsing Slack exports and transcripts, and the import page."""

import datetime as dt
import io
import json
import re
import zipfile
import zoneinfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents import chatlog
from incidents.chatlog import ChatLogError, guess_kind, parse_chat_log
from incidents.models import Incident, TimelineEntry
from tests.factories import make_entry, make_incident, make_user

UTC = zoneinfo.ZoneInfo("UTC")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
DAY = dt.date(2026, 3, 2)


def parse(text, zone=UTC, day=DAY, filename=""):
    data = text if isinstance(text, bytes) else text.encode()
    return parse_chat_log(data, zone=zone, day=day, filename=filename)


def at(hour, minute, second=0, day=DAY):
    return dt.datetime.combine(day, dt.time(hour, minute, second), dt.UTC)


# --- Transcripts --------------------------------------------------------------------------


def test_transcript_formats_from_the_issue():
    """Both line formats of the issue, with the time-only line on the chosen day."""
    log = parse(
        "[10:42] alice: restarted the primary\n"
        "2026-03-03 11:05 bob: Status: error rate back to normal\n"
    )
    assert log.source == "transcript"
    assert [(m.at, m.author, m.text) for m in log.messages] == [
        (at(10, 42), "alice", "restarted the primary"),
        (at(11, 5, day=dt.date(2026, 3, 3)), "bob", "Status: error rate back to normal"),
    ]


def test_transcript_times_are_converted_from_the_chosen_zone():
    """10:42 in Berlin (winter, UTC+1) is 09:42 UTC; in summer (UTC+2) 08:42 UTC."""
    log = parse("[10:42] alice: restarted\n2026-07-01 10:42 bob: again\n", zone=BERLIN)
    assert log.messages[0].at == at(9, 42)
    assert log.messages[1].at == dt.datetime(2026, 7, 1, 8, 42, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("line", "expected_time", "author", "text"),
    [
        ("[2026-03-02 10:42:05] alice: x", (10, 42, 5), "alice", "x"),
        ("2026-03-02T10:42 alice: x", (10, 42, 0), "alice", "x"),
        ("10:42 alice: x", (10, 42, 0), "alice", "x"),
        ("[10:42 PM] alice: x", (22, 42, 0), "alice", "x"),
        ("[12:05 am] alice: x", (0, 5, 0), "alice", "x"),
        ("10:42 <alice> x", (10, 42, 0), "alice", "x"),
        ("[10:42] Alice Ng: restarted at 10:40", (10, 42, 0), "Alice Ng", "restarted at 10:40"),
        ("10:42 - alice: x", (10, 42, 0), "alice", "x"),
    ],
)
def test_transcript_line_variants(line, expected_time, author, text):
    [message] = parse(line).messages
    assert message.at == at(*expected_time)
    assert (message.author, message.text) == (author, text)


def test_transcript_continuation_lines_and_unreadable_lines():
    """A line without a time continues the message above; lines before the first message
    are skipped and reported."""
    log = parse(
        "Exported from #inc-42\n\n[10:42] alice: restarted the primary\n  it came back\n"
        "[10:43] bob: thanks\n"
    )
    assert [m.text for m in log.messages] == ["restarted the primary\nit came back", "thanks"]
    assert log.notes == [
        "1 line before the first message or without a readable time skipped (line 1)"
    ]


def test_transcript_rolls_over_midnight():
    """A time-only log that runs past midnight moves on to the next day."""
    log = parse("[23:58] alice: still broken\n[00:03] bob: fixed\n")
    assert [m.at for m in log.messages] == [at(23, 58), at(0, 3, day=dt.date(2026, 3, 3))]


def test_messages_come_out_in_time_order():
    log = parse("2026-03-02 10:00 a: second\n2026-03-02 09:00 b: first\n")
    assert [m.text for m in log.messages] == ["first", "second"]


# --- Slack --------------------------------------------------------------------------------


SLACK_DAY = [
    {"type": "message", "subtype": "channel_join", "ts": "1772443920.000100", "user": "U1",
     "text": "<@U1> has joined the channel"},
    {"type": "message", "ts": "1772444520.000200", "user": "U1",
     "user_profile": {"display_name": "alice", "real_name": "Alice Ng"},
     "text": "restarted the primary &amp; paged <@U2>, see <https://grafana.example/d/1|dashboard>"},
    {"type": "message", "ts": "1772445000.000300", "user": "U2",
     "text": "Status update: checkout recovered <!here>"},
    {"type": "huddle_thread", "ts": "1772445100.0", "user": "U2", "text": "huddle"},
    {"type": "message", "subtype": "weird_new_thing", "ts": "1772445200.0", "text": "?"},
    {"type": "message", "ts": "not a time", "user": "U2", "text": "broken"},
]  # fmt: skip


def test_slack_day_file():
    """ts becomes UTC, names and Slack markup become text, noise is skipped and counted."""
    log = parse(json.dumps(SLACK_DAY), zone=BERLIN)  # the zone does not matter for Slack
    assert log.source == "slack"
    assert [(m.at, m.author) for m in log.messages] == [
        (dt.datetime(2026, 3, 2, 9, 42, tzinfo=dt.UTC), "alice"),
        (dt.datetime(2026, 3, 2, 9, 50, tzinfo=dt.UTC), "U2"),
    ]
    assert log.messages[0].text == (
        "restarted the primary & paged @U2, see dashboard (https://grafana.example/d/1)"
    )
    assert log.messages[1].text == "Status update: checkout recovered @here"
    assert log.messages[1].kind == "status_update"
    assert log.notes == [
        "1 channel join notices skipped",
        "1 message of unknown subtype 'weird_new_thing' skipped",
        "1 message of unknown type 'huddle_thread' skipped",
        "1 message without a valid ts skipped",
    ]


def test_slack_api_response_shape():
    log = parse(json.dumps({"ok": True, "messages": SLACK_DAY[1:3]}))
    assert len(log.messages) == 2


def slack_zip(channels=("inc-42",), users=True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if users:
            archive.writestr("users.json", json.dumps(
                [{"id": "U2", "name": "bob", "profile": {"display_name": "bobby"}}]))  # fmt: skip
        for channel in channels:
            archive.writestr(f"{channel}/2026-03-02.json", json.dumps(SLACK_DAY[1:3]))
            archive.writestr(f"{channel}/2026-03-03.json", json.dumps(
                [{"type": "message", "ts": "1772530000.0", "user": "U2", "text": "all clear"}]))  # fmt: skip
    return buffer.getvalue()


def test_slack_export_zip_with_users():
    """A channel export zip: day files in order, user ids named from users.json."""
    log = parse(slack_zip(), filename="export.zip")
    assert [m.author for m in log.messages] == ["alice", "bobby", "bobby"]
    assert "paged @bobby" in log.messages[0].text
    assert log.messages[-1].kind == "resolution"


def test_slack_export_with_several_channels_is_refused():
    with pytest.raises(ChatLogError, match=r"2 channels \(general, inc-42\)"):
        parse(slack_zip(channels=("inc-42", "general")))


# --- Bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The chat log is empty."),
        (b"   \n", "The chat log is empty."),
        (b"x" * (chatlog.MAX_BYTES + 1), "the limit is 2 MB"),
        ("[10:42] zoë: ok".encode("latin-1"), "not UTF-8 text"),
        (b'[{"type": "message", "ts": "1", "text": "cut', "looks like JSON but cannot be read"),
        (b'{"not": "slack"}', "not a Slack channel export"),
        (json.dumps([{"type": "pin", "ts": "1"}]).encode(), "No messages were found"),
        (b"just some notes\nwithout times\n", "No messages were found"),
        (b"PK\x03\x04broken", "not a readable zip archive"),
        (b"\x00\x01\x02binary", "binary data"),
    ],
    ids=[
        "empty",
        "blank",
        "oversized",
        "latin-1",
        "truncated slack",
        "not slack",
        "only noise",
        "no times",
        "bad zip",
        "binary",
    ],
)
def test_bad_chat_logs_give_a_clear_message(data, message):
    with pytest.raises(ChatLogError, match=re.escape(message)):
        parse(data)


def test_too_many_messages_is_refused():
    lines = "".join(f"2026-03-02 10:{n // 60:02d}:{n % 60:02d} a: m{n}\n" for n in range(401))
    with pytest.raises(ChatLogError, match="401 messages; at most 400"):
        parse(lines)


def test_unknown_slack_types_only_is_no_messages_with_the_reason():
    """A Slack export with only unknown message types says what it skipped."""
    data = json.dumps([{"type": "call", "ts": "1"}, {"type": "call", "ts": "2"}])
    with pytest.raises(ChatLogError, match="2 messages of unknown type 'call' skipped"):
        parse(data)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Status: still degraded, next update 10:30", "status_update"),
        (":rotating_light: UPDATE - checkout recovering", "status_update"),
        ("resolved, closing", "resolution"),
        ("rolled back to v41", "mitigation"),
        ("[FIRING:1] CheckoutErrorRate", "alert"),
        ("paging the DBA on call", "escalation"),
        ("decided to fail over after 5 more minutes", "decision"),
        ("posted to the status page for customers", "communication"),
        ("restarted the primary", "action"),
    ],
)
def test_kind_guesses(text, kind):
    assert guess_kind(text) == kind


# --- The page -----------------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db


def author_client(client, incident):
    author = make_user(password=None)
    incident.authors.add(author)
    client.force_login(author)
    return client


def url(incident):
    return f"/incidents/{incident.slug}/timeline/import/"


def preview(client, incident, text="", file=None, zone="UTC", day="2026-03-02", **headers):
    data = {"step": "preview", "text": text, "zone": zone, "day": day}
    if file is not None:
        data["file"] = file
    return client.post(url(incident), data, **headers)


@pytestmark_db
def test_page_needs_an_author_or_reviewer(client):
    """Readers may not import into a timeline; authors and reviewers may."""
    incident = make_incident()
    reader = make_user(password=None)
    client.force_login(reader)
    assert client.get(url(incident)).status_code == 403
    incident.reviewers.add(reader)
    assert client.get(url(incident)).status_code == 200


@pytestmark_db
def test_page_full_and_partial(client):
    """GET defaults the zone and the day (the incident's start day); htmx gets the partial."""
    incident = make_incident(started_at=dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC))
    author_client(client, incident)
    page = client.get(url(incident)).content.decode()
    assert "<h1>Import a chat log into the timeline</h1>" in page
    assert 'value="2026-03-02"' in page
    assert '<option value="UTC" selected>' in page
    partial = client.get(url(incident), headers={"HX-Request": "true"}).content.decode()
    assert partial.startswith('\n<section id="chatlog"') or partial.lstrip().startswith(
        '<section id="chatlog"'
    )
    assert "<h1>" not in partial


@pytestmark_db
def test_preview_then_import_adds_only_ticked_messages_with_chosen_kinds(client):
    """The whole flow without JavaScript: preview, tick, pick kinds, import."""
    incident = make_incident()
    author_client(client, incident)
    response = preview(client, incident, text=(
        "[10:42] alice: restarted the primary\n[10:45] bob: Status: recovering\n"
        "[10:50] carol: lunch?\n"), zone="Europe/Berlin")  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 200
    assert "3 messages from the transcript" in body
    assert 'class="chatlog-row kind-status_update"' in body
    assert "2 Mar 10:42:00" in body  # shown in the chosen zone
    payload = re.search(r'name="payload" value="([^"]+)"', body).group(1)
    before = TimelineEntry.objects.count()
    response = client.post(url(incident), {
        "step": "import", "payload": payload, "zone_name": "Europe/Berlin",
        "pick": ["0", "1"], "kind-0": "mitigation", "kind-1": "status_update", "kind-2": "other",
    })  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == incident.get_absolute_url() + "#timeline"
    entries = list(incident.timeline_entries.order_by("at"))
    assert TimelineEntry.objects.count() == before + 2
    assert [(e.at, e.kind, e.text) for e in entries[-2:]] == [
        (at(9, 42), "mitigation", "alice: restarted the primary"),
        (at(9, 45), "status_update", "bob: Status: recovering"),
    ]
    assert entries[-1].text_html == "<p>bob: Status: recovering</p>"


@pytestmark_db
def test_preview_partial_and_htmx_import_redirects(client):
    """With htmx the preview is the #chatlog partial and the import answers HX-Redirect."""
    incident = make_incident()
    author_client(client, incident)
    response = preview(client, incident, text="[10:42] alice: restarted",
                       headers={"HX-Request": "true"})  # fmt: skip
    body = response.content.decode()
    assert "<h1>" not in body and 'id="chatlog"' in body
    payload = re.search(r'name="payload" value="([^"]+)"', body).group(1)
    response = client.post(url(incident), {"step": "import", "payload": payload, "pick": ["0"],
                           "kind-0": "action"}, headers={"HX-Request": "true"})  # fmt: skip
    assert response.status_code == 200
    assert response["HX-Redirect"] == incident.get_absolute_url() + "#timeline"
    assert incident.timeline_entries.count() == 1


@pytestmark_db
def test_upload_a_slack_file(client):
    incident = make_incident()
    author_client(client, incident)
    upload = SimpleUploadedFile("2026-03-02.json", json.dumps(SLACK_DAY).encode(),
                                content_type="application/json")  # fmt: skip
    body = preview(client, incident, file=upload).content.decode()
    assert "2 messages from the Slack export" in body
    assert "1 channel join notices skipped" in body


@pytestmark_db
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "no times here"}, "No messages were found"),
        ({}, "Upload a chat log file or paste the log."),
        (
            {"file": SimpleUploadedFile("big.txt", b"x" * (chatlog.MAX_BYTES + 10))},
            "the limit is 2 MB",
        ),
        (
            {"file": SimpleUploadedFile("log.txt", "10:42 zoë: x".encode("latin-1"))},
            "not UTF-8 text",
        ),
        ({"text": "[10:42] a: x", "zone": "Mars/Olympus"}, "Select a valid choice"),
    ],
    ids=["no messages", "nothing", "oversized", "not utf-8", "bad zone"],
)
def test_bad_logs_show_a_message_and_add_nothing(client, kwargs, message):
    incident = make_incident()
    author_client(client, incident)
    before = TimelineEntry.objects.count()
    response = preview(client, incident, **kwargs)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert TimelineEntry.objects.count() == before


@pytestmark_db
def test_tampered_or_foreign_payload_adds_nothing(client):
    """The preview's messages are signed for this incident and this person."""
    incident = make_incident()
    other = make_incident()
    author_client(client, incident)
    body = preview(client, incident, text="[10:42] alice: restarted").content.decode()
    payload = re.search(r'name="payload" value="([^"]+)"', body).group(1)
    other.authors.add(*incident.authors.all())
    response = client.post(url(other), {"step": "import", "payload": payload, "pick": ["0"]})
    assert "That preview has expired or was changed" in response.content.decode()
    response = client.post(url(incident), {"step": "import", "payload": payload + "x",
                                           "pick": ["0"]})  # fmt: skip
    assert "That preview has expired or was changed" in response.content.decode()
    assert TimelineEntry.objects.count() == 0


@pytestmark_db
def test_nothing_ticked_keeps_the_preview(client):
    incident = make_incident()
    author_client(client, incident)
    body = preview(client, incident, text="[10:42] alice: restarted").content.decode()
    payload = re.search(r'name="payload" value="([^"]+)"', body).group(1)
    response = client.post(url(incident), {"step": "import", "payload": payload,
                                           "kind-0": "decision"})  # fmt: skip
    body = response.content.decode()
    assert "Tick at least one message" in body
    assert '<option value="decision" selected>' in body
    assert TimelineEntry.objects.count() == 0


@pytestmark_db
def test_messages_already_in_the_timeline_are_left_unticked(client):
    """Importing the same log twice adds nothing twice."""
    incident = make_incident()
    make_entry(incident, at=at(10, 42), text="alice: restarted")
    author_client(client, incident)
    body = preview(client, incident, text="[10:42] alice: restarted").content.decode()
    assert "Already in the timeline" in body
    assert 'id="pick-0" checked' not in body


@pytestmark_db
def test_add_timeline_entries_is_all_or_nothing():
    """A bad entry (unknown kind) stops the whole batch."""
    from django.core.exceptions import ValidationError

    incident = make_incident()
    with pytest.raises(ValidationError):
        chatlog.add_timeline_entries(
            incident=incident,
            entries=[(at(10, 0), "action", "good"), (at(10, 1), "nonsense", "bad")],
        )
    assert not TimelineEntry.objects.filter(incident=incident).exists()
    assert Incident.objects.filter(pk=incident.pk).exists()


@pytestmark_db
def test_a_preview_too_big_to_post_back_is_refused_up_front(client, monkeypatch):
    """The preview form must fit Django's 2.5 MB form limit, or the import step would fail."""
    from incidents import exchange_views

    monkeypatch.setattr(exchange_views, "PAYLOAD_MAX_CHARS", 10)
    incident = make_incident()
    author_client(client, incident)
    body = preview(client, incident, text="[10:42] alice: restarted").content.decode()
    assert "too long to import at once" in body
    assert 'name="payload"' not in body


@pytestmark_db
def test_sending_the_same_preview_twice_adds_the_entries_once(client):
    """A double click on Add does not duplicate the timeline."""
    incident = make_incident()
    author_client(client, incident)
    body = preview(client, incident, text="[10:42] alice: restarted").content.decode()
    payload = re.search(r'name="payload" value="([^"]+)"', body).group(1)
    form = {"step": "import", "payload": payload, "pick": ["0"], "kind-0": "action"}
    client.post(url(incident), form)
    response = client.post(url(incident), form, follow=True)
    assert incident.timeline_entries.count() == 1
    assert "Added 0 timeline entries from the chat log (1 already in the timeline)." in (
        response.content.decode()
    )
