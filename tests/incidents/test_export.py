"""Export: the debrief/1 JSON document (command and view) and the Markdown write-up."""

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import exchange
from incidents.models import ActionItem, Answer, GuidedQuestion, Incident
from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_service,
    make_tag,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 2, 9, 12, tzinfo=dt.UTC)


def build_rich_incident(**overrides):
    """One incident with every field and relation the format carries, filled in."""
    payments = make_team(name="payments", slug="payments")
    platform = make_team(name="Platform", slug="platform")
    alice = make_user(username="amira", first_name="Amira", last_name="Ng", password=None)
    bob = make_user(username="bob", first_name="", password=None)
    carol = make_user(username="carol", password=None)
    fields = {
        "slug": "checkout-outage-2026-03-02",
        "title": "Checkout outage",
        "severity": "SEV2",
        "status": Incident.Status.PUBLISHED,
        "summary": "Checkout failed for **30%** of customers.",
        "impact": "Lost orders for 47 minutes.",
        "narrative": "A config push\n\nwent everywhere at once.",
        "went_well": "Rollback was fast.",
        "lucky": "Low traffic.",
        "lessons": "Canary config pushes.",
        "started_at": START,
        "detected_at": START + dt.timedelta(minutes=6),
        "acknowledged_at": START + dt.timedelta(minutes=8),
        "mitigated_at": START + dt.timedelta(minutes=40),
        "resolved_at": START + dt.timedelta(minutes=47),
        "customer_visible": True,
        "data_lost": False,
        "visibility": Incident.Visibility.TEAMS,
        "created_by": alice,
        "created_at": START + dt.timedelta(days=1, microseconds=123456),
        "published_at": START + dt.timedelta(days=3),
        "services": [make_service(name="checkout", slug="checkout")],
        "teams": [payments],
        "tags": [make_tag(name="deploy", slug="deploy"), make_tag(name="config", slug="config")],
        "authors": [alice],
        "reviewers": [bob],
    }
    fields.update(overrides)
    incident = make_incident(**fields)
    incident.visible_teams.add(platform)
    incident.visible_users.add(carol)
    detect = make_entry(incident, at=START + dt.timedelta(minutes=6), kind="detection",
                        text="Alert fired for checkout errors")  # fmt: skip
    push = make_entry(incident, at=START, kind="action", text="Config pushed\nto all regions")
    make_entry(incident, at=START + dt.timedelta(minutes=30), kind="status_update",
               text="Status: rolling back")  # fmt: skip
    monitoring = make_factor(incident, category="monitoring", position=0,
                             description="Alert needed a long baseline.", evidence=[detect])  # fmt: skip
    make_factor(incident, category="change", position=1, description="No canary for config.",
                evidence=[push], accepted_risk=True, accepted_risk_reason="Rare change")  # fmt: skip
    item = make_action_item(
        incident, title="Alert on canary error rate", team=payments, owner=bob,
        description="Page on canary errors.", due=dt.date(2026, 4, 1), priority="high",
        status="done", kind="detect", evidence="Shipped in PR 12; verified in a game day.",
        completed_at=START + dt.timedelta(days=20), tracker_url="https://tracker.example/OPS-1",
        verified_effective_at=START + dt.timedelta(days=40), verified_by=alice,
        created_at=START + dt.timedelta(days=2),
    )  # fmt: skip
    item.addresses.add(monitoring)
    make_action_item(incident, title="Write the runbook", team=platform, owner=None, due=None,
                     priority="low", status="wont_do", wont_do_reason="Superseded",
                     created_at=START + dt.timedelta(days=2))  # fmt: skip
    question = GuidedQuestion.objects.order_by("position").first()
    Answer.objects.create(incident=incident, question=question, text="The **error** graph.")
    return incident


def exported(queryset=None) -> dict:
    return json.loads(exchange.export_document(queryset))


def test_export_writes_every_field_of_the_contract_and_the_extras():
    """Every field of CONTRACT.md's example is written, plus the documented additions."""
    build_rich_incident()
    document = exported()
    assert document["format"] == "debrief/1"
    [record] = document["incidents"]
    assert record["slug"] == "checkout-outage-2026-03-02"
    assert record["started_at"] == "2026-03-02T09:12:00Z"
    assert record["acknowledged_at"] == "2026-03-02T09:20:00Z"
    assert record["created_at"] == "2026-03-03T09:12:00.123456Z"
    assert record["services"] == ["checkout"]
    assert record["teams"] == ["payments"]
    assert record["tags"] == ["config", "deploy"]
    assert record["authors"] == ["amira"] and record["reviewers"] == ["bob"]
    assert record["visibility"] == "teams"
    assert record["visible_teams"] == ["Platform"] and record["visible_users"] == ["carol"]
    assert [e["kind"] for e in record["timeline"]] == ["action", "detection", "status_update"]
    assert record["timeline"][0] == {
        "at": "2026-03-02T09:12:00Z",
        "kind": "action",
        "text": "Config pushed\nto all regions",
    }
    factors = record["contributing_factors"]
    assert factors[0]["evidence_entries"] == [1]
    assert factors[1]["accepted_risk"] is True
    assert factors[1]["accepted_risk_reason"] == "Rare change"
    item = record["action_items"][0]
    assert item == {
        "title": "Alert on canary error rate",
        "description": "Page on canary errors.",
        "kind": "detect",
        "team": "payments",
        "owner": "bob",
        "due": "2026-04-01",
        "priority": "high",
        "status": "done",
        "completed_at": "2026-03-22T09:12:00Z",
        "tracker_url": "https://tracker.example/OPS-1",
        "evidence": "Shipped in PR 12; verified in a game day.",
        "wont_do_reason": None,
        "addresses": [0],
        "verified_effective_at": "2026-04-11T09:12:00Z",
        "verified_by": "amira",
        "created_at": "2026-03-04T09:12:00Z",
    }
    assert record["action_items"][1]["owner"] is None
    assert record["action_items"][1]["due"] is None
    assert record["answers"] == [
        {"question": GuidedQuestion.objects.order_by("position").first().prompt,
         "text": "The **error** graph."}
    ]  # fmt: skip
    assert record["created_by"] == "amira"


def test_every_field_is_written_null_when_empty():
    """CONTRACT: every field is written, null when empty (lists are empty lists)."""
    Incident.objects.create(title="Bare", slug="bare")
    [record] = exported()["incidents"]
    for key in ("summary", "impact", "narrative", "went_well", "lucky", "lessons",
                "started_at", "detected_at", "mitigated_at", "resolved_at",
                "customer_visible", "created_by", "published_at"):  # fmt: skip
        assert key in record and record[key] is None, key
    for key in ("services", "teams", "tags", "timeline", "contributing_factors", "action_items"):
        assert record[key] == [], key


def test_empty_database_exports_an_empty_document(tmp_path):
    """An empty database gives a valid document with no incidents."""
    target = tmp_path / "none.json"
    call_command("export_incidents", str(target), stdout=io.StringIO())
    assert json.loads(target.read_text()) == {"format": "debrief/1", "incidents": []}


def test_export_command_writes_file_and_reports(tmp_path):
    """`export_incidents FILE` writes the document and says how many and how big."""
    build_rich_incident()
    target = tmp_path / "out.json"
    out = io.StringIO()
    call_command("export_incidents", str(target), stdout=out)
    assert json.loads(target.read_text(encoding="utf-8"))["incidents"][0]["title"] == (
        "Checkout outage"
    )
    assert "Exported 1 incidents to" in out.getvalue()
    assert not list(tmp_path.glob(".out.json.*")), "no temporary file is left behind"


def test_export_to_standard_output_keeps_stdout_pure_json():
    """`-` writes the document to standard output and the report to standard error."""
    build_rich_incident()
    out, err = io.StringIO(), io.StringIO()
    call_command("export_incidents", "-", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["incidents"][0]["slug"] == "checkout-outage-2026-03-02"
    assert "Exported 1 incidents" in err.getvalue()


def test_export_filters_by_status_and_since(tmp_path):
    """--status (repeatable or comma-separated) and --since narrow the export."""
    make_incident(title="Old published", started_at=START - dt.timedelta(days=400))
    make_incident(title="New published", started_at=START)
    make_incident(title="New draft", status="draft", started_at=START)
    target = tmp_path / "f.json"

    def titles(*args):
        call_command("export_incidents", str(target), *args, stdout=io.StringIO())
        return sorted(i["title"] for i in json.loads(target.read_text())["incidents"])

    assert titles("--status", "published") == ["New published", "Old published"]
    assert titles("--status", "draft,published", "--since", "2026-01-01") == [
        "New draft",
        "New published",
    ]
    assert titles("--status", "draft", "--status", "published") == [
        "New draft",
        "New published",
        "Old published",
    ]
    assert titles("--since", "2026-03-02T09:12:00Z") == ["New draft", "New published"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "closed"], "'closed' is not one of"),
        (["--since", "yesterday"], "is not a date"),
        (["--since", "2026-03-02T09:00"], "has no time zone"),
    ],
)
def test_export_rejects_bad_filters(tmp_path, args, message):
    """Bad filter values are a clear error, not a traceback or an empty file."""
    with pytest.raises(CommandError, match=message):
        call_command("export_incidents", str(tmp_path / "x.json"), *args)
    assert not (tmp_path / "x.json").exists()


def test_export_queries_do_not_grow_with_incidents():
    """Prefetching per chunk: the query count is fixed whatever the number of incidents."""

    def count():
        with CaptureQueriesContext(connection) as captured:
            exchange.export_document()
        return len(captured.captured_queries)

    team = make_team()
    for _ in range(2):
        incident = make_incident(teams=[team], authors=[make_user(password=None)])
        make_factor(incident, evidence=[make_entry(incident)])
        make_action_item(incident, team=team, owner=make_user(password=None))
    few = count()
    for _ in range(8):
        incident = make_incident(teams=[team], authors=[make_user(password=None)])
        make_factor(incident, evidence=[make_entry(incident)])
        make_action_item(incident, team=team, owner=make_user(password=None))
    assert count() == few


def test_export_streams_in_chunks():
    """Incidents are loaded a chunk at a time (the 10,000-incident memory promise): five
    incidents in chunks of two take three rounds of the same queries; one chunk takes one."""

    def queries(chunk_size):
        with CaptureQueriesContext(connection) as captured:
            pieces = list(exchange.iter_json(chunk_size=chunk_size))
        assert len(pieces) == 7  # opening, five incidents, closing
        assert len(json.loads("".join(pieces))["incidents"]) == 5
        return len(captured.captured_queries)

    for n in range(5):
        make_incident(title=f"Incident {n}")
    per_chunk = queries(10) - 1  # one query reads the ids in export order
    assert queries(2) == 1 + 3 * per_chunk


def test_export_order_is_by_start_then_slug():
    """Incidents without a start come first on every database, then by start time and slug,
    so the document's order does not depend on ids."""
    make_incident(slug="b-later", title="b", started_at=START + dt.timedelta(days=1))
    make_incident(slug="c-same", title="c", started_at=START)
    make_incident(slug="a-same", title="a", started_at=START)
    Incident.objects.create(slug="z-no-start", title="z")
    assert [r["slug"] for r in exported()["incidents"]] == ["z-no-start", "a-same", "c-same",
                                                            "b-later"]  # fmt: skip


# --- Views --------------------------------------------------------------------------------


def test_export_json_view_downloads_one_incident(client_logged_in):
    """export.json is the debrief/1 document of one incident, as a download."""
    incident = build_rich_incident(visibility=Incident.Visibility.EVERYONE)
    make_incident(title="Another one")
    response = client_logged_in.get(f"/incidents/{incident.slug}/export.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{incident.slug}.json"'
    document = json.loads(b"".join(response.streaming_content))
    assert [i["slug"] for i in document["incidents"]] == [incident.slug]


def test_export_md_view_is_markdown_never_html(client_logged_in):
    """export.md is served as text/markdown with a download filename."""
    incident = build_rich_incident(visibility=Incident.Visibility.EVERYONE)
    response = client_logged_in.get(f"/incidents/{incident.slug}/export.md")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{incident.slug}.md"'
    assert response["X-Content-Type-Options"] == "nosniff"
    text = response.content.decode()
    assert text.startswith("# Checkout outage\n")
    assert "<html" not in text and "<p>" not in text


def test_markdown_holds_the_whole_write_up():
    """Headings, the timeline, factors with their evidence, and action items with owners."""
    build_rich_incident()
    incident = exchange.export_queryset().get()
    text = exchange.incident_markdown(incident, dt.UTC)
    for expected in (
        "## Summary", "Checkout failed for **30%** of customers.", "## Impact",
        "Visible to customers.", "## What happened", "## Timeline",
        "- **2026-03-02 09:12** · *Action* — Config pushed\n  to all regions",
        "- **09:18** · *Detection* — Alert fired for checkout errors",
        "## Contributing factors", "### 1. Monitoring & alerting gap",
        "Evidence in the timeline: 09:18 detection.", "Accepted as a risk: Rare change.",
        "## Action items", "### Alert on canary error rate", "**Owner:** bob · **Team:** payments",
        "**Status:** Done (completed 2026-03-22 09:12)", "<https://tracker.example/OPS-1>",
        "**Evidence:**", "**Owner:** unassigned", "## What went well", "## Where we got lucky",
        "## Lessons", "- **Time to resolve:** 47 min", "**Written by:** Amira Ng (amira)",
        "## Questions we asked ourselves",
    ):  # fmt: skip
        assert expected in text, expected


def test_markdown_escapes_plain_fields():
    """A title or a name is text, not Markdown or HTML: it cannot inject markup."""
    make_incident(title="<script>alert(1)</script> *bold* [link](x)")
    text = exchange.incident_markdown(exchange.export_queryset().get(), dt.UTC)
    assert text.splitlines()[0] == r"# \<script\>alert(1)\</script\> \*bold\* \[link\](x)"


def test_markdown_uses_the_readers_zone():
    """Times are in the zone the document names."""
    import zoneinfo

    build_rich_incident()
    text = exchange.incident_markdown(
        exchange.export_queryset().get(), zoneinfo.ZoneInfo("Europe/Berlin")
    )
    assert "All times are Europe/Berlin." in text
    assert "| Started | 2026-03-02 10:12 |" in text


@pytest.mark.parametrize("suffix", ["export.md", "export.json"])
def test_exports_respect_visibility(client_logged_in, suffix):
    """A private incident cannot be exported by someone who may not read it, and the answer
    is the same 404 as for a slug that does not exist."""
    incident = make_incident(visibility=Incident.Visibility.PEOPLE)
    assert client_logged_in.get(f"/incidents/{incident.slug}/{suffix}").status_code == 404
    draft = make_incident(status=Incident.Status.DRAFT)
    assert client_logged_in.get(f"/incidents/{draft.slug}/{suffix}").status_code == 404
    assert client_logged_in.get(f"/incidents/nope/{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", ["export.md", "export.json"])
def test_exports_require_sign_in(client, suffix):
    incident = make_incident()
    response = client.get(f"/incidents/{incident.slug}/{suffix}")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_detail_page_links_to_exports_and_chat_import(client, user):
    """Readers get the export links; authors also get the chat-log import."""
    incident = make_incident()
    client.force_login(user)
    body = client.get(incident.get_absolute_url()).content.decode()
    assert f'href="/incidents/{incident.slug}/export.md"' in body
    assert f'href="/incidents/{incident.slug}/export.json"' in body
    assert "timeline/import/" not in body
    incident.authors.add(user)
    body = client.get(incident.get_absolute_url()).content.decode()
    assert f'href="/incidents/{incident.slug}/timeline/import/"' in body


def test_export_does_not_load_rendered_html():
    """Only Markdown sources are read; the *_html twins stay in the database."""
    build_rich_incident()
    with CaptureQueriesContext(connection) as captured:
        exchange.export_document()
    assert not [q for q in captured.captured_queries if "_html" in q["sql"]]
    assert ActionItem.objects.count() == 2
