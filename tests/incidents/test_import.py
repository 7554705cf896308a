"""Import: all-or-nothing, every problem reported by record and field, and the round trip
export → import into an empty database → export giving the identical document."""

import copy
import datetime as dt
import io
import json
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from incidents import exchange
from incidents.backup import current_counts
from incidents.demo import seed_demo
from incidents.models import ActionItem, Incident, Service, Tag, Team, TimelineEntry
from tests.factories import make_incident, make_team, make_user
from tests.incidents.test_export import build_rich_incident

pytestmark = pytest.mark.django_db
User = get_user_model()


def run_import(path, *args):
    """(exit status, standard output, standard error) of `import_incidents`."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_incidents", str(path), "--no-progress", *args, stdout=out,
                     stderr=err)  # fmt: skip
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue() + str(error)
    return 0, out.getvalue(), err.getvalue()


def write(tmp_path, document, name="in.json") -> str:
    path = tmp_path / name
    if isinstance(document, bytes):
        path.write_bytes(document)
    elif isinstance(document, str):
        path.write_text(document, encoding="utf-8")
    else:
        path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def empty_the_database():
    """What a freshly migrated database holds: no incidents, people, teams, services or tags."""
    Incident.objects.all().delete()
    Team.objects.all().delete()
    Service.objects.all().delete()
    Tag.objects.all().delete()
    User.objects.all().delete()


def record(**overrides) -> dict:
    """A small valid record."""
    fields = {
        "slug": "search-stale-2026-03-02",
        "title": "Search results went stale",
        "severity": "SEV3",
        "status": "published",
        "summary": "The index stopped updating.",
        "started_at": "2026-03-02T09:12:00Z",
        "detected_at": "2026-03-02T10:30:00+01:00",
        "resolved_at": "2026-03-02T10:00:00Z",
        "services": ["search"],
        "teams": ["platform"],
        "tags": ["indexing"],
        "timeline": [{"at": "2026-03-02T09:12:00Z", "kind": "detection", "text": "Alert"}],
        "contributing_factors": [{"category": "monitoring", "description": "No lag alert"}],
        "action_items": [{"title": "Alert on index lag", "team": "platform", "owner": None,
                          "due": "2026-04-01", "priority": "high", "status": "open"}],
    }  # fmt: skip
    fields.update(overrides)
    return fields


def document(*records) -> dict:
    return {"format": "debrief/1", "incidents": list(records)}


# --- Round trip ---------------------------------------------------------------------------


def test_round_trip_through_an_empty_database_gives_the_identical_document(tmp_path):
    """export → import into an empty database → export: byte for byte the same document."""
    build_rich_incident()
    make_incident(title="Second", visibility=Incident.Visibility.PEOPLE)
    first = exchange.export_document()
    empty_the_database()
    assert Incident.objects.count() == 0
    status, out, err = run_import(write(tmp_path, first), "--create-users")
    assert status == 0, err
    assert "Imported 2 incidents (2 new, 0 replaced)" in out
    assert exchange.export_document() == first


def test_round_trip_of_seeded_data(tmp_path):
    """The demo data (many stories, evidence, done items) survives the round trip."""
    seed_demo(incidents=12, seed=4)
    first = exchange.export_document()
    empty_the_database()
    status, _, err = run_import(write(tmp_path, first), "--create-users")
    assert status == 0, err
    assert exchange.export_document() == first


def test_private_incident_stays_private_after_the_move(tmp_path):
    """Visibility, visible teams and visible people are honoured by import."""
    build_rich_incident()
    first = exchange.export_document()
    empty_the_database()
    run_import(write(tmp_path, first), "--create-users")
    incident = Incident.objects.get()
    assert incident.visibility == Incident.Visibility.TEAMS
    assert list(incident.visible_teams.values_list("name", flat=True)) == ["Platform"]
    assert list(incident.visible_users.values_list("username", flat=True)) == ["carol"]
    outsider = make_user(password=None)
    assert not Incident.objects.visible_to(outsider).exists()


def test_import_renders_markdown_and_links_evidence(tmp_path):
    """Imported write-ups read like ones written here: HTML rendered, evidence linked."""
    build_rich_incident()
    first = exchange.export_document()
    empty_the_database()
    run_import(write(tmp_path, first), "--create-users")
    incident = Incident.objects.get()
    assert incident.summary_html == "<p>Checkout failed for <strong>30%</strong> of customers.</p>"
    factor = incident.factors.get(position=0)
    assert [e.text for e in factor.evidence.all()] == ["Alert fired for checkout errors"]
    item = incident.action_items.get(title="Alert on canary error rate")
    assert list(item.addresses.all()) == [factor]
    assert item.evidence_html.startswith("<p>Shipped")


def test_import_into_a_non_empty_database_adds(tmp_path):
    """Existing incidents stay; new slugs are added next to them."""
    existing = make_incident(title="Already here")
    status, _, err = run_import(write(tmp_path, document(record())))
    assert status == 0, err
    assert Incident.objects.count() == 2
    assert Incident.objects.filter(pk=existing.pk).exists()


# --- Names and people ---------------------------------------------------------------------


def test_unknown_teams_services_and_tags_are_created(tmp_path):
    """Teams, services and tags the file names are created; existing ones are reused by
    name, another case of the name, or slug."""
    make_team(name="Platform", slug="platform")
    status, out, _ = run_import(write(tmp_path, document(record())))
    assert status == 0
    assert Team.objects.count() == 1  # "platform" is the Platform team
    assert Service.objects.get().slug == "search"
    assert Tag.objects.get().name == "indexing"
    assert "Created 1 service (search); 1 tag (indexing)." in out
    incident = Incident.objects.get()
    assert list(incident.teams.values_list("slug", flat=True)) == ["platform"]


def test_unknown_owner_is_an_error_without_create_users(tmp_path):
    """An owner with no account stops the import and is named with its record and field."""
    bad = record(action_items=[{"title": "Fix", "team": "platform", "owner": "ghost"}],
                 authors=["ghost"])  # fmt: skip
    status, _, err = run_import(write(tmp_path, document(bad)))
    assert status == 1
    assert "incidents[0].authors[0]: there is no user 'ghost'" in err
    assert "incidents[0].action_items[0].owner: there is no user 'ghost'" in err
    assert "1 person named in the file has no account here (ghost); with --create-users" in err
    assert not Incident.objects.exists()
    assert not User.objects.filter(username="ghost").exists()


def test_create_users_makes_inactive_accounts_without_a_password(tmp_path):
    """--create-users: an inactive account without a usable password."""
    bad = record(action_items=[{"title": "Fix", "team": "platform", "owner": "ghost"}])
    status, out, _ = run_import(write(tmp_path, document(bad)), "--create-users")
    assert status == 0
    ghost = User.objects.get(username="ghost")
    assert not ghost.is_active
    assert not ghost.has_usable_password()
    assert ActionItem.objects.get().owner == ghost
    assert "1 inactive user (ghost)" in out


# --- Existing slugs and --update ----------------------------------------------------------


def test_existing_slug_is_an_error_without_update(tmp_path):
    """An incident that already exists is not overwritten by accident."""
    make_incident(slug="search-stale-2026-03-02", title="Original")
    status, _, err = run_import(write(tmp_path, document(record())))
    assert status == 1
    assert "incidents[0].slug: an incident 'search-stale-2026-03-02' already exists" in err
    assert Incident.objects.get().title == "Original"


def test_update_replaces_the_incident_in_place(tmp_path):
    """--update swaps the content and keeps the row (id, links from elsewhere); the version
    moves on so an editor with the old version open gets a conflict."""
    original = make_incident(slug="search-stale-2026-03-02", title="Original")
    TimelineEntry.objects.create(incident=original, at=original.started_at, text="Old entry")
    status, out, err = run_import(write(tmp_path, document(record())), "--update")
    assert status == 0, err
    assert "(0 new, 1 replaced)" in out
    incident = Incident.objects.get()
    assert incident.pk == original.pk
    assert incident.title == "Search results went stale"
    assert incident.version == original.version + 1
    assert list(incident.timeline_entries.values_list("text", flat=True)) == ["Alert"]


def test_update_round_trip_in_the_same_database(tmp_path):
    """Export, then import the export over the same database with --update: unchanged."""
    build_rich_incident()
    first = exchange.export_document()
    status, _, err = run_import(write(tmp_path, first), "--update")
    assert status == 0, err
    assert exchange.export_document() == first


def test_update_with_a_bad_record_elsewhere_changes_nothing(tmp_path):
    """The replacement is part of the all-or-nothing import."""
    make_incident(slug="search-stale-2026-03-02", title="Original")
    doc = document(record(), record(slug="other", severity="SEV9"))
    status, _, _ = run_import(write(tmp_path, doc), "--update")
    assert status == 1
    assert Incident.objects.get().title == "Original"


# --- Bad input: nothing written, every problem named ---------------------------------------


def test_error_names_the_record_and_field_exactly(tmp_path):
    """The contract's example message, word for word, with sixty records."""
    records = [record(slug=f"incident-{n}", title=f"Incident {n}") for n in range(60)]
    records[59]["severity"] = "SEV99"
    before = current_counts()
    status, _, err = run_import(write(tmp_path, document(*records)))
    assert status == 1
    assert "incidents[59].severity: 'SEV99' is not one of SEV1–SEV4" in err
    assert "Nothing was imported: 1 problem in 1 of 60 incidents." in err
    assert current_counts() == before


def test_every_invalid_record_is_reported(tmp_path):
    """All problems at once, in file order, not just the first."""
    doc = document(
        record(slug="a", status="closed"),
        record(slug="b"),
        record(slug="c", timeline=[{"at": "2026-03-02T09:12:00Z", "kind": "oops", "text": ""}],
               action_items=[{"title": "", "team": None, "due": "1 April",
                              "tracker_url": "javascript:alert(1)"}]),
    )  # fmt: skip
    status, _, err = run_import(write(tmp_path, doc))
    lines = [line for line in err.splitlines() if line.startswith("incidents[")]
    assert status == 1
    assert lines == [
        "incidents[0].status: 'closed' is not one of draft, in_review, changes_requested, "
        "published",
        "incidents[2].timeline[0].kind: 'oops' is not one of detection, alert, action, "
        "decision, status_update, escalation, communication, mitigation, resolution, other",
        "incidents[2].timeline[0].text: required",
        "incidents[2].action_items[0].title: required",
        "incidents[2].action_items[0].due: '1 April' is not a date like 2026-04-01",
        "incidents[2].action_items[0].team: required: the team that owns this item",
        "incidents[2].action_items[0].tracker_url: 'javascript:alert(1)' is not an http(s) URL",
    ]
    assert not Incident.objects.exists()


BAD_FILES = {
    "truncated JSON": (
        json.dumps(document(record()))[:-40],
        "The file ends in the middle of the JSON document",
    ),
    "wrong format": (
        json.dumps({"format": "debrief/2", "incidents": [record()]}),
        "format: 'debrief/2' is not 'debrief/1'",
    ),
    "missing format": (json.dumps({"incidents": [record()]}), "format: missing"),
    "empty file": (b"", "The file is empty."),
    "only whitespace": ("  \n ", "The file is empty."),
    "not UTF-8": (
        json.dumps(document(record(title="Caf\u00e9 down")), ensure_ascii=False).encode("latin-1"),
        "The file is not UTF-8 text",
    ),
    "not an object": ("[1, 2]", "should be a JSON object"),
    "incidents not a list": (
        json.dumps({"format": "debrief/1", "incidents": {"a": 1}}),
        "incidents: expected a list",
    ),
    "broken JSON": ('{"format": "debrief/1", "incidents": [{"title": "x" "y"}]}', "not valid JSON"),
    "trailing garbage": (json.dumps(document(record())) + " {}", "extra data after the document"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_unreadable_files_write_nothing(tmp_path, case):
    """Each bad file gives one clear message, exit status 1, and an unchanged database."""
    content, message = BAD_FILES[case]
    make_incident(title="Already here")
    before = current_counts()
    status, _, err = run_import(write(tmp_path, content))
    assert status == 1
    assert message in err
    assert "Nothing was imported." in err
    assert current_counts() == before


BAD_RECORDS = {
    "duplicate slugs": (
        [record(slug="same"), record(slug="other"), record(slug="same")],
        "incidents[2].slug: 'same' appears more than once in the file (first at incidents[0])",
    ),
    "timestamp without a zone": (
        [record(started_at="2026-03-02T09:12:00")],
        "incidents[0].started_at: '2026-03-02T09:12:00' has no time zone; add Z for UTC or an "
        "offset such as +01:00",
    ),
    "date instead of a timestamp": (
        [record(timeline=[{"at": "2026-03-02", "kind": "action", "text": "x"}])],
        "incidents[0].timeline[0].at: '2026-03-02' has no time of day",
    ),
    "milestones out of order": (
        [record(detected_at="2026-03-02T08:00:00Z")],
        "incidents[0].detected_at: Detected time must not be before started time.",
    ),
    "10 MB text field": (
        [record(narrative="x" * 10_000_000)],
        "incidents[0].narrative: 10,000,000 characters is more than the limit of 200,000",
    ),
    "title too long": (
        [record(title="t" * 201)],
        "incidents[0].title: 201 characters is more than the limit of 200",
    ),
    "wrong types": (
        [record(teams="platform", customer_visible="yes", summary=12)],
        "incidents[0].summary: expected text, found a number",
    ),
    "evidence pointing nowhere": (
        [
            record(
                contributing_factors=[
                    {"category": "testing", "description": "d", "evidence_entries": [3]}
                ]
            )
        ],
        "incidents[0].contributing_factors[0].evidence_entries[0]: 3 is not a position in the "
        "timeline (0 to 0)",
    ),
    "record not an object": (["just text"], "incidents[0]: expected an object, found text"),
    "bad slug": ([record(slug="Not a slug!")], "incidents[0].slug: 'Not a slug!' is not a slug"),
    "bad username": ([record(authors=["has space"])], "'has space' is not a valid username"),
}


@pytest.mark.parametrize("case", BAD_RECORDS, ids=list(BAD_RECORDS))
def test_invalid_records_write_nothing(tmp_path, case):
    """A bad record among good ones: nothing is written and the record and field are named."""
    records, message = BAD_RECORDS[case]
    good = record(slug="good-one", title="Good one")
    make_incident(title="Already here")
    before = current_counts()
    status, _, err = run_import(write(tmp_path, document(*records, good)))
    assert status == 1
    assert message in err
    assert current_counts() == before


def test_database_changing_between_check_and_write_aborts_cleanly(tmp_path):
    """Someone creates the same slug after validation: the write rolls back completely."""
    path = write(tmp_path, document(record(slug="late"), record(slug="racing")))
    with open(path, "rb") as stream:
        report = exchange.validate_file(stream)
        assert report.ok
        make_incident(slug="racing", title="Created meanwhile")
        with pytest.raises(exchange.ImportAborted, match="racing"):
            exchange.write_file(stream, report, update=False, create_users=False)
    assert list(Incident.objects.values_list("slug", flat=True)) == ["racing"]
    assert not Service.objects.exists()


# --- Reading, standard input, progress ------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64])
def test_streaming_reader_matches_json_loads_at_any_chunk_size(chunk_size):
    """Values cut at any byte (multi-byte characters, numbers, escapes) parse the same."""
    doc = document(record(title="Zürich 🚒 \"quoted\" \\ back", summary="é" * 50),
                   {"title": "n", "n": 12345678901234567890, "f": -1.5e-7, "b": [True, None]})  # fmt: skip
    doc["extra"] = {"fields": "may be added"}
    data = json.dumps(doc, ensure_ascii=False, indent=1).encode()
    scanner_class = exchange._Scanner

    class Small(scanner_class):
        def __init__(self, stream, chunk_size_=chunk_size):
            super().__init__(stream, chunk_size_)

    original = exchange._Scanner
    exchange._Scanner = Small
    try:
        events = list(exchange.read_document(io.BytesIO(data)))
    finally:
        exchange._Scanner = original
    incidents = [value for kind, _, value in events if kind == "incident"]
    assert incidents == doc["incidents"]
    assert ("key", "format", "debrief/1") in events
    assert ("key", "extra", {"fields": "may be added"}) in events


def test_syntax_errors_say_where(tmp_path):
    """A JSON error names the line and column of the file."""
    content = '{"format": "debrief/1",\n "incidents": [\n  {"title": "a",}\n]}'
    status, _, err = run_import(write(tmp_path, content))
    assert status == 1
    assert "line 3, column 16" in err


def test_import_reads_standard_input(monkeypatch):
    """`import_incidents -` reads the document from standard input."""
    data = json.dumps(document(record())).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = io.StringIO()
    call_command("import_incidents", "-", stdout=out, stderr=io.StringIO())
    assert "Imported 1 incident (1 new, 0 replaced)" in out.getvalue()
    assert Incident.objects.get().slug == "search-stale-2026-03-02"


def test_progress_bar_goes_to_standard_error(tmp_path):
    """--progress shows tqdm bars on standard error; standard output keeps the summary."""
    records = [record(slug=f"incident-{n}", title=f"Incident {n}") for n in range(5)]
    out, err = io.StringIO(), io.StringIO()
    call_command("import_incidents", write(tmp_path, document(*records)), "--progress",
                 stdout=out, stderr=err)  # fmt: skip
    assert "Importing" in err.getvalue()
    assert "5/5" in err.getvalue()
    assert "Imported 5 incidents" in out.getvalue()


def test_missing_file_is_a_clear_error(tmp_path):
    status, _, err = run_import(tmp_path / "nope.json")
    assert status == 1
    assert "no such file" in err


def test_record_without_slug_gets_one_that_the_file_does_not_need(tmp_path):
    """A record without a slug gets one from its title and day, never a slug that another
    record of the same file names."""
    doc = document(
        record(slug=None, title="Search stale"),
        record(slug="search-stale-2026-03-02", title="Named"),
    )
    status, _, err = run_import(write(tmp_path, doc))
    assert status == 0, err
    assert sorted(Incident.objects.values_list("slug", flat=True)) == [
        "search-stale-2026-03-02",
        "search-stale-2026-03-02-2",
    ]


def test_fields_may_be_added_to_the_format(tmp_path):
    """Unknown fields (from a newer exporter or another tool) are ignored, not errors."""
    doc = document(record(new_field={"x": 1}))
    doc["exported_by"] = "another tool"
    status, _, err = run_import(write(tmp_path, doc))
    assert status == 0, err


def test_minimal_record_uses_defaults(tmp_path):
    """Only a title is required; missing optional fields are null or absent."""
    status, _, err = run_import(write(tmp_path, document({"title": "Just a title"})))
    assert status == 0, err
    incident = Incident.objects.get()
    assert (incident.severity, incident.status, incident.visibility) == (
        "SEV3",
        "draft",
        "everyone",
    )


def test_done_items_without_evidence_are_accepted(tmp_path):
    """History written before Debrief: done without evidence imports as it was."""
    item = {"title": "Old fix", "team": "platform", "status": "done", "completed_at": None}
    status, _, err = run_import(write(tmp_path, document(record(action_items=[item]))))
    assert status == 0, err
    imported = ActionItem.objects.get()
    assert imported.status == "done" and imported.evidence == ""
    assert imported.completed_at is None


def test_timestamps_with_offsets_are_stored_in_utc(tmp_path):
    doc = document(record(started_at="2026-03-02T10:12:00+01:00"))
    run_import(write(tmp_path, doc))
    assert Incident.objects.get().started_at == dt.datetime(2026, 3, 2, 9, 12, tzinfo=dt.UTC)


def test_validation_writes_nothing_even_when_valid(tmp_path):
    """The first pass only reads: the staff page's preview depends on it."""
    path = write(tmp_path, document(copy.deepcopy(record())))
    before = current_counts()
    with open(path, "rb") as stream:
        report = exchange.validate_file(stream, create_users=True)
    assert report.ok and report.incidents == 1 and report.new_teams == ["platform"]
    assert current_counts() == before


def test_a_bad_record_still_has_its_people_checked(tmp_path):
    """One run reports everything: a bad field and an unknown person in the same record."""
    status, _, err = run_import(write(tmp_path, document(record(severity="SEV0",
                                                                authors=["ghost"]))))  # fmt: skip
    assert status == 1
    assert "incidents[0].severity: 'SEV0' is not one of SEV1–SEV4" in err
    assert "incidents[0].authors[0]: there is no user 'ghost'" in err
