"""Full-text search: the query parser, the index triggers and ranking, on SQLite and PostgreSQL
alike (the same tests run on both)."""

import pytest
from django.core.paginator import Paginator
from django.db import connection

from incidents.models import ActionItem, ContributingFactor, Incident, TimelineEntry
from incidents.search import (
    HIT_CLOSE,
    HIT_OPEN,
    MAX_TERMS,
    STOP_WORDS,
    ParsedQuery,
    RankedSearch,
    Term,
    highlight,
    keywords,
    parse_query,
    search_incidents,
    terms_in,
)
from incidents.search_models import ensure_search_index, missing_triggers
from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_team,
    make_user,
)

# --- Parsing (no database) -----------------------------------------------------------------


def test_words_phrases_exclusions_and_prefixes():
    """The documented syntax reads into include/exclude terms."""
    query = parse_query('Checkout "rolled back" -canary certif* -"config deploy"')
    assert query.include == (
        Term(("checkout",)),
        Term(("rolled", "back")),
        Term(("certif",), prefix=True),
    )
    assert query.exclude == (Term(("canary",)), Term(("config", "deploy")))
    assert str(query) == 'checkout "rolled back" certif* -canary -"config deploy"'


@pytest.mark.parametrize(
    "text",
    [
        '"unbalanced quote',
        'NEAR(a b) AND OR NOT * ^ : "',
        "a" * 5000,
        "x " * 3000,
        "\x00\ufffd",
        "",
    ],
)
def test_malformed_queries_parse_without_error(text):
    """Unbalanced quotes, FTS operators and very long input are plain words, never an error."""
    query = parse_query(text)
    assert len(query.include) + len(query.exclude) <= MAX_TERMS
    for term in (*query.include, *query.exclude):
        assert all(token.isalnum() for token in term.tokens)


def test_operators_become_quoted_words():
    """FTS5 operators typed by a person are quoted, so they match as words."""
    query = parse_query("NEAR AND disk")
    assert [t.fts5() for t in query.include] == ['"near"', '"disk"']  # "and" is a stop word


def test_stop_words_and_duplicates_are_dropped():
    """ "the" means nothing on PostgreSQL, so it means nothing on SQLite either."""
    assert not parse_query("the and of")
    assert parse_query("disk Disk DISK").include == (Term(("disk",)),)


def test_hyphenated_word_is_a_phrase():
    """ "user-service" is indexed as two adjacent words, so it is searched as a phrase."""
    assert parse_query("user-service").include == (Term(("user", "service")),)


def test_keywords_pick_distinctive_words():
    """Similar-incident matching uses long, non-stop words of a title or summary."""
    query = keywords("The checkout went down after the canary deploy at 09:12")
    assert {t.tokens[0] for t in query.include} == {"checkout", "canary", "deploy", "went"}


def test_highlight_escapes_author_text_and_marks_hits():
    """Only our <mark> becomes markup; the author's text is escaped, stray markers vanish."""
    html = highlight(f"<script>alert(1)</script> {HIT_OPEN}disk{HIT_CLOSE} **full** {HIT_OPEN}x")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<mark>disk</mark>" in html
    assert "**" not in html and HIT_OPEN not in html


# --- Searching (database) ------------------------------------------------------------------


def results(text, user=None, queryset=None):
    queryset = queryset if queryset is not None else Incident.objects.all()
    found = search_incidents(queryset.for_list(), text)
    if not isinstance(found, RankedSearch):
        found = found.order_by("-started_at", "-id")
    return list(Paginator(found, 25).get_page(1).object_list)


def titles(text, **kwargs):
    return [incident.title for incident in results(text, **kwargs)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field",
    ["title", "summary", "impact", "narrative", "lessons", "went_well", "lucky"],
)
def test_every_field_of_the_write_up_is_searchable(field):
    """Title, summary, impact, narrative and lessons (and the reflections) are indexed."""
    fields = {"title": "Something else", field: "The zookeeper quorum was lost."}
    incident = make_incident(**fields)
    make_incident(title="Unrelated")
    assert titles("zookeeper") == [incident.title]


@pytest.mark.django_db
def test_timeline_factors_and_action_items_are_searchable():
    """Children of the write-up are indexed through their own triggers."""
    a = make_incident(title="A")
    make_entry(a, text="Paged the **kafka** on-call.")
    b = make_incident(title="B")
    make_factor(b, description="Runbook for memcached was stale.")
    c = make_incident(title="C")
    make_action_item(c, title="Add a redis dashboard", description="Show evictions.")
    d = make_incident(title="D")
    make_action_item(d, title="Something", description="Tune the nginx buffers.")
    assert titles("kafka") == ["A"]
    assert titles("memcached") == ["B"]
    assert titles("redis") == ["C"]
    assert titles("nginx") == ["D"]


@pytest.mark.django_db
def test_all_words_must_match_but_may_sit_in_different_fields():
    """Words are ANDed over the whole write-up: title and timeline together are a match."""
    both = make_incident(title="Checkout latency")
    make_entry(both, text="Rolled back the canary.")
    make_incident(title="Checkout errors")  # no canary anywhere
    assert titles("checkout canary") == ["Checkout latency"]


@pytest.mark.django_db
def test_title_hit_ranks_above_timeline_hit():
    """A hit in the title beats the same word in a timeline entry."""
    in_timeline = make_incident(title="Slow pages", summary="Pages were slow.")
    make_entry(in_timeline, text="Suspected the elasticsearch cluster.")
    make_incident(title="Elasticsearch disk full", summary="The cluster filled up.")
    assert titles("elasticsearch") == ["Elasticsearch disk full", "Slow pages"]
    first, second = results("elasticsearch")
    assert first.search_rank > second.search_rank


@pytest.mark.django_db
def test_phrases_exclusions_and_prefixes():
    """ "a phrase" needs the words together; -word leaves out; word* matches a prefix."""
    make_incident(title="Cache", summary="We rolled back the deploy.")
    make_incident(title="Queue", summary="The deploy rolled on; we went back later.")
    make_incident(title="Certificates", summary="The certificate expired.")
    assert titles('"rolled back"') == ["Cache"]
    assert sorted(titles("deploy -queue")) == ["Cache"]
    assert titles("certif*") == ["Certificates"]
    assert sorted(titles("-deploy")) == ["Certificates"]


@pytest.mark.django_db
def test_stemming_finds_other_forms():
    """ "expire" finds "expired" on both databases."""
    make_incident(title="Certificate", summary="The certificate expired at midnight.")
    assert titles("expire") == ["Certificate"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    ['"unbalanced', "NEAR(disk full, 2)", "disk AND full OR *", "-", '""', "^disk", "a" * 5000,
     "title:disk", "(disk", "disk)", "'; DROP TABLE incidents_incident; --", "\u0000x", "🔥 disk"],
)  # fmt: skip
def test_malformed_queries_never_fail(text):
    """Whatever is typed, the database gets a valid query."""
    make_incident(title="Disk full")
    found = results(text)
    assert isinstance(found, list)
    assert Incident.objects.count() == 1


@pytest.mark.django_db
def test_snippets_are_escaped_and_marked():
    """Author text in excerpts is escaped; only the hit is wrapped in <mark>."""
    incident = make_incident(
        title="Broken", summary="A <b>bold</b> <script>x()</script> zebra ran."
    )
    make_entry(incident, text="The zebra alarm fired.")
    (hit,) = results("zebra")
    html = " ".join(str(e.html) for e in hit.snippets)
    assert "<script>" not in html and "<b>" not in html
    assert "script" in html  # escaped on SQLite, brackets dropped on PostgreSQL
    assert "<mark>zebra</mark>" in html.lower() or "<mark>Zebra</mark>" in html
    assert {e.label for e in hit.snippets} <= {"Summary", "Timeline"}
    assert hit.search_title is None  # the title did not match


@pytest.mark.django_db
def test_title_hit_is_highlighted():
    """The title of a result shows its hits marked."""
    make_incident(title="Expired <certificate> on API")
    (hit,) = results("certificate")
    assert "<mark>certificate</mark>" in hit.search_title
    assert "<certificate>" not in hit.search_title


@pytest.mark.django_db
def test_search_respects_the_queryset_it_is_given():
    """Search never widens what the caller may see (visibility, filters)."""
    outsider = make_user()
    make_incident(title="Hidden zebra", visibility=Incident.Visibility.PEOPLE)
    make_incident(title="Public zebra")
    make_incident(title="Draft zebra", status=Incident.Status.DRAFT)
    assert titles("zebra", queryset=Incident.objects.visible_to(outsider)) == ["Public zebra"]


@pytest.mark.django_db
def test_ranked_results_count_and_page():
    """A Paginator can count and page ranked results."""
    for n in range(30):
        make_incident(title=f"Zebra {n}")
    found = search_incidents(Incident.objects.for_list(), "zebra")
    paginator = Paginator(found, 25)
    assert paginator.count == 30
    assert len(paginator.page(2).object_list) == 5
    ids = {i.pk for i in paginator.page(1).object_list} | {i.pk for i in paginator.page(2)}
    assert len(ids) == 30


# --- Keeping the index in step --------------------------------------------------------------


@pytest.mark.django_db
def test_index_follows_updates_and_deletes():
    """Saves, queryset updates (the autosave) and deletes all reach the index, on both DBs."""
    incident = make_incident(title="Original title")
    entry = make_entry(incident, text="First words")
    factor = make_factor(incident, description="A factor about walruses")
    Incident.objects.filter(pk=incident.pk).update(summary="Now mentions penguins")
    assert titles("penguins") == ["Original title"]
    TimelineEntry.objects.filter(pk=entry.pk).update(text="Second words about narwhals")
    assert titles("narwhals") == ["Original title"]
    assert titles("first") == []
    factor.delete()
    assert titles("walruses") == []
    incident.title = "Renamed"
    incident.save()
    assert titles("renamed") == ["Renamed"]
    incident.delete()
    assert titles("narwhals") == []


@pytest.mark.django_db
def test_bulk_inserts_are_indexed():
    """bulk_create sends no signals; the triggers index it anyway."""
    incident = make_incident(title="Bulk")
    TimelineEntry.objects.bulk_create(
        [
            TimelineEntry(incident=incident, at=incident.started_at, text=f"okapi {n}")
            for n in range(3)
        ]
    )
    ContributingFactor.objects.bulk_create(
        [ContributingFactor(incident=incident, category="capacity", description="tapir load")]
    )
    ActionItem.objects.bulk_create(
        [ActionItem(incident=incident, team=make_team(), title="Fence the capybara")]
    )
    assert titles("okapi") == titles("tapir") == titles("capybara") == ["Bulk"]


@pytest.mark.django_db
def test_seeded_demo_data_is_searchable():
    """After seed_demo (bulk inserts throughout, no signals), search finds every seeded
    incident by a word of its title and by a word of its timeline."""
    from incidents.demo import seed_demo

    seed_demo(incidents=12, seed=3)
    for incident in Incident.objects.prefetch_related("timeline_entries"):
        only_this = Incident.objects.filter(pk=incident.pk)
        entry = incident.timeline_entries.all()[0]
        title_word, entry_word = (
            max((w for w in parse_query(text).words if w not in STOP_WORDS), key=len)
            for text in (incident.title, entry.text)
        )
        for word in (title_word, entry_word):
            found = search_incidents(only_this, word)
            assert isinstance(found, RankedSearch) and found.count() == 1, (incident, word)


@pytest.mark.django_db(transaction=True)
def test_missing_triggers_are_put_back_and_the_index_rebuilt():
    """A migration that rebuilds a table drops its triggers on SQLite; after migrate they are
    repaired and the index refilled."""
    incident = make_incident(title="Before")
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER incidents_search_timeline_ai")
        else:
            cursor.execute(
                "DROP TRIGGER incidents_search_timeline_insert ON incidents_timelineentry"
            )
    assert missing_triggers(connection)
    make_entry(incident, text="Written while the trigger was missing: aardvark")
    assert ensure_search_index(connection) is True
    assert not missing_triggers(connection)
    assert titles("aardvark") == ["Before"]
    assert ensure_search_index(connection) is False  # nothing to do the second time


@pytest.mark.django_db
def test_terms_in_reports_which_words_an_incident_has():
    """For "why it matched": which of the words each incident contains."""
    a = make_incident(title="Canary deploy")
    b = make_incident(title="Deploy freeze")
    found = terms_in([a.pk, b.pk], ParsedQuery(include=(Term(("canary",)), Term(("deploy",)))))
    assert [str(t) for t in found[a.pk]] == ["canary", "deploy"]
    assert [str(t) for t in found[b.pk]] == ["deploy"]
