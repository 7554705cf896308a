"""The lessons library: publishing from an incident, stories, search and filters, useful marks,
visibility, and pinned query counts."""

import pytest
from django.db import IntegrityError

from incidents.models import Incident
from lessons import services
from lessons.models import Lesson, UsefulMark
from tests.factories import make_factor, make_incident, make_tag, make_user

pytestmark = pytest.mark.django_db


def make_lesson(**overrides):
    incidents = overrides.pop("incidents", ())
    tags = overrides.pop("tags", ())
    fields = {"title": "Test restores, not backups", "kind": Lesson.Kind.STORY,
              "body": "The newest backup had been failing for two weeks."}  # fmt: skip
    fields.update(overrides)
    lesson = Lesson.objects.create(**fields)
    lesson.incidents.add(*incidents)
    lesson.tags.add(*tags)
    return lesson


# --- Services -------------------------------------------------------------------------------


def test_publish_from_incident_copies_lessons_tags_and_categories(user):
    """One click makes a lesson from the write-up's lessons, tags and factor categories."""
    tag = make_tag(name="backups", slug="backups")
    incident = make_incident(title="Restore failed", lessons="Restore monthly.", tags=[tag],
                             authors=[user])  # fmt: skip
    make_factor(incident, category="monitoring")
    make_factor(incident, category="tooling")
    make_factor(incident, category="monitoring", description="Again.")
    lesson, created = services.publish_from_incident(incident=incident, by=user)
    assert created
    assert lesson.title == "Lessons from “Restore failed”"
    assert lesson.body == "Restore monthly." and "<p>Restore monthly.</p>" in lesson.body_html
    assert lesson.categories == ["monitoring", "tooling"]
    assert list(lesson.tags.all()) == [tag]
    assert list(lesson.incidents.all()) == [incident]
    assert lesson.kind == Lesson.Kind.FROM_INCIDENT and lesson.is_published
    assert lesson.author == user


def test_publishing_twice_finds_the_first_lesson(user):
    """A double click does not make two lessons."""
    incident = make_incident(lessons="Canary config.")
    first, _ = services.publish_from_incident(incident=incident, by=user)
    second, created = services.publish_from_incident(incident=incident, by=user)
    assert second == first and not created
    assert Lesson.objects.count() == 1


def test_lessons_of_a_private_incident_start_as_a_draft(user):
    """The library is read by everyone; a private write-up's lessons wait for a check."""
    incident = make_incident(lessons="Secret detail.", visibility=Incident.Visibility.TEAMS)
    lesson, _ = services.publish_from_incident(incident=incident, by=user)
    assert not lesson.is_published
    outsider = make_user()
    assert not Lesson.objects.visible_to(outsider).filter(pk=lesson.pk).exists()
    assert Lesson.objects.visible_to(user).filter(pk=lesson.pk).exists()


def test_useful_once_per_person_and_counted(user):
    lesson = make_lesson()
    assert services.mark_useful(lesson=lesson, user=user) is True
    assert services.mark_useful(lesson=lesson, user=user) is False
    services.mark_useful(lesson=lesson, user=make_user())
    lesson.refresh_from_db()
    assert lesson.useful_count == 2
    assert services.unmark_useful(lesson=lesson, user=user) is True
    assert services.unmark_useful(lesson=lesson, user=user) is False
    lesson.refresh_from_db()
    assert lesson.useful_count == 1


def test_the_database_refuses_a_second_mark(user):
    lesson = make_lesson()
    UsefulMark.objects.create(lesson=lesson, user=user)
    with pytest.raises(IntegrityError):
        UsefulMark.objects.create(lesson=lesson, user=user)


def test_reserved_slugs_are_never_taken():
    """A lesson called "New" must not hide the /lessons/new/ page."""
    assert make_lesson(title="New").slug == "new-lesson"
    assert make_lesson(title="From").slug == "from-lesson"


# --- The library pages ------------------------------------------------------------------------


def titles(response):
    return [lesson.title for lesson in response.context["page"].object_list]


def test_list_search_with_phrases_and_exclusions(client_logged_in):
    make_lesson(title="The backup that wasn't", body="Backups failed quietly.")
    make_lesson(
        title="Prompt colours", body="Two hosts one letter apart.", do_differently="Red prompts."
    )
    make_lesson(title="Retries", body="A timeout is not a failure.")
    assert titles(client_logged_in.get("/lessons/?q=backups")) == ["The backup that wasn't"]
    assert titles(client_logged_in.get("/lessons/?q=red+prompts")) == ["Prompt colours"]
    assert titles(client_logged_in.get('/lessons/?q="letter apart"')) == ["Prompt colours"]
    assert set(titles(client_logged_in.get("/lessons/?q=-backups"))) == {
        "Prompt colours",
        "Retries",
    }
    body = client_logged_in.get("/lessons/?q=timeout").content.decode()
    assert "<mark>timeout</mark>" in body


def test_list_filters_kind_tag_and_category(client_logged_in):
    tag = make_tag(name="deploy", slug="deploy")
    make_lesson(title="Near", kind=Lesson.Kind.NEAR_MISS, categories=["capacity"])
    make_lesson(title="Tagged", tags=[tag], categories=["monitoring", "tooling"])
    assert titles(client_logged_in.get("/lessons/?kind=near_miss")) == ["Near"]
    assert titles(client_logged_in.get("/lessons/?tag=deploy")) == ["Tagged"]
    assert titles(client_logged_in.get("/lessons/?category=tooling")) == ["Tagged"]
    assert titles(client_logged_in.get("/lessons/?category=capacity")) == ["Near"]


def test_most_useful_first(client_logged_in):
    """Newest first by default; "most useful first" on request."""
    loved = make_lesson(title="Older, loved")
    make_lesson(title="Newest, unloved")
    Lesson.objects.filter(pk=loved.pk).update(useful_count=5)
    assert titles(client_logged_in.get("/lessons/")) == ["Newest, unloved", "Older, loved"]
    assert titles(client_logged_in.get("/lessons/?sort=useful")) == [
        "Older, loved",
        "Newest, unloved",
    ]


def test_list_partial_for_htmx(client_logged_in):
    make_lesson()
    response = client_logged_in.get("/lessons/?q=restores", headers={"HX-Request": "true"})
    assert response.content.decode().lstrip().startswith('<section id="lesson-results"')
    assert "HX-Request" in response["Vary"]


def test_drafts_of_others_are_hidden(client_logged_in):
    other = make_user()
    draft = make_lesson(title="Someone's draft", is_published=False, author=other)
    assert titles(client_logged_in.get("/lessons/")) == []
    assert client_logged_in.get(draft.get_absolute_url()).status_code == 404


def test_malformed_search_never_500(client_logged_in):
    for query in ['"', "NEAR(*", "x" * 5000, "-"]:
        assert client_logged_in.get("/lessons/", {"q": query}).status_code == 200


def test_detail_links_only_readable_incidents(client_logged_in):
    private = make_incident(title="Hidden incident", visibility=Incident.Visibility.PEOPLE)
    public = make_incident(title="Open incident")
    lesson = make_lesson(incidents=[private, public], do_differently="Restore **monthly**.")
    body = client_logged_in.get(lesson.get_absolute_url()).content.decode()
    assert "Open incident" in body and "Hidden incident" not in body
    assert "What I&#x27;d do differently" in body or "What I'd do differently" in body
    assert "<strong>monthly</strong>" in body


def test_mark_useful_full_page_and_partial(client_logged_in, user):
    """A plain POST redirects back; htmx gets the button partial; twice counts once."""
    lesson = make_lesson()
    response = client_logged_in.post(f"/lessons/{lesson.slug}/useful/")
    assert response.status_code == 302
    partial = client_logged_in.post(
        f"/lessons/{lesson.slug}/useful/", headers={"HX-Request": "true"}
    )
    assert partial.content.decode().lstrip().startswith('<form id="useful"')
    assert b"1 found this useful, you included" in partial.content
    lesson.refresh_from_db()
    assert lesson.useful_count == 1
    client_logged_in.post(f"/lessons/{lesson.slug}/useful/", {"undo": "1"})
    lesson.refresh_from_db()
    assert lesson.useful_count == 0
    assert client_logged_in.get(f"/lessons/{lesson.slug}/useful/").status_code == 405


def test_tell_a_story_and_edit_it(client_logged_in, user):
    """Anyone signed in writes a near miss or war story; only its author edits it."""
    response = client_logged_in.post(
        "/lessons/new/",
        {"title": "I deleted the wrong database", "kind": "story",
         "body": "Two terminals, one prompt.", "do_differently": "Red prompts.",
         "categories": ["tooling"], "is_published": "on"},
    )  # fmt: skip
    lesson = Lesson.objects.get()
    assert response.status_code == 302 and response["Location"] == lesson.get_absolute_url()
    assert lesson.author == user and lesson.categories == ["tooling"]
    edit = client_logged_in.post(
        f"/lessons/{lesson.slug}/edit/",
        {"title": "I deleted the wrong database", "kind": "near_miss", "body": "Caught it.",
         "is_published": "on"},
    )  # fmt: skip
    assert edit.status_code == 302
    lesson.refresh_from_db()
    assert lesson.kind == "near_miss" and lesson.categories == []
    other = make_user()
    client_logged_in.force_login(other)
    assert client_logged_in.get(f"/lessons/{lesson.slug}/edit/").status_code == 403


def test_story_form_errors_stay_on_the_page(client_logged_in):
    """Invalid input re-renders the form with field errors (status 200), nothing saved."""
    response = client_logged_in.post(
        "/lessons/new/", {"title": "", "kind": "from_incident", "body": "",
                          "incident_slugs": "no-such-incident"}
    )  # fmt: skip
    assert response.status_code == 200
    assert b"No incident you may read has the address no-such-incident" in response.content
    assert Lesson.objects.count() == 0


def test_lesson_from_incident_needs_a_readable_incident(client_logged_in):
    private = make_incident(visibility=Incident.Visibility.PEOPLE)
    readable = make_incident()
    response = client_logged_in.post(
        "/lessons/new/", {"title": "T", "kind": "from_incident", "body": "B",
                          "incident_slugs": f"{private.slug}"}
    )  # fmt: skip
    assert response.status_code == 200 and Lesson.objects.count() == 0
    client_logged_in.post(
        "/lessons/new/", {"title": "T", "kind": "from_incident", "body": "B",
                          "incident_slugs": f" {readable.slug} ", "is_published": "on"}
    )  # fmt: skip
    assert list(Lesson.objects.get().incidents.all()) == [readable]


def test_editing_keeps_links_the_editor_cannot_see(client_logged_in, user):
    """The form neither shows nor drops a link to an incident the editor may not read."""
    private = make_incident(visibility=Incident.Visibility.PEOPLE)
    lesson = make_lesson(author=user, kind="story", incidents=[private])
    form_page = client_logged_in.get(f"/lessons/{lesson.slug}/edit/").content.decode()
    assert private.slug not in form_page
    client_logged_in.post(
        f"/lessons/{lesson.slug}/edit/", {"title": "T", "kind": "story", "body": "B"}
    )
    assert list(lesson.incidents.all()) == [private]


def test_publish_from_incident_page(client_logged_in, user):
    """The one click from the incident page: a POST that lands on the new lesson."""
    incident = make_incident(lessons="Canary config changes.", authors=[user])
    response = client_logged_in.post(f"/lessons/from/{incident.slug}/publish/")
    lesson = Lesson.objects.get()
    assert response.status_code == 302 and response["Location"] == lesson.get_absolute_url()
    again = client_logged_in.post(f"/lessons/from/{incident.slug}/publish/", follow=True)
    assert b"already in the library" in again.content
    assert Lesson.objects.count() == 1


def test_only_authors_and_reviewers_publish(client_logged_in):
    incident = make_incident(lessons="Something.")
    assert client_logged_in.post(f"/lessons/from/{incident.slug}/publish/").status_code == 403
    assert Lesson.objects.count() == 0


def test_nothing_to_publish_without_lessons_text(client_logged_in, user):
    incident = make_incident(lessons="", authors=[user])
    response = client_logged_in.post(f"/lessons/from/{incident.slug}/publish/")
    assert response.status_code == 302 and Lesson.objects.count() == 0


def test_incident_lessons_panel(client_logged_in, user):
    """The incident page's lazy panel lists its lessons and offers the button to its authors;
    a plain visit goes to the library filtered to the incident."""
    incident = make_incident(lessons="Write it down.", authors=[user])
    partial = client_logged_in.get(
        f"/lessons/from/{incident.slug}/", headers={"HX-Request": "true"}
    )
    assert b"Publish these lessons to the library" in partial.content
    assert (
        partial.content.decode().lstrip().startswith('<section class="card" id="incident-lessons"')
    )
    lesson, _ = services.publish_from_incident(incident=incident, by=user)
    partial = client_logged_in.get(
        f"/lessons/from/{incident.slug}/", headers={"HX-Request": "true"}
    )
    assert lesson.title.encode() in partial.content.replace(b"&#x27;", b"'")
    assert b"Publish these lessons" not in partial.content
    plain = client_logged_in.get(f"/lessons/from/{incident.slug}/")
    assert plain.status_code == 302 and plain["Location"] == f"/lessons/?incident={incident.slug}"
    listed = client_logged_in.get(plain["Location"])
    assert titles(listed) == [lesson.title]


def test_incident_lessons_panel_respects_visibility(client_logged_in):
    private = make_incident(visibility=Incident.Visibility.PEOPLE)
    response = client_logged_in.get(
        f"/lessons/from/{private.slug}/", headers={"HX-Request": "true"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url", ["/lessons/", "/lessons/?q=backup&sort=useful", "/lessons/?category=tooling"]
)
def test_list_query_count_is_fixed(client_logged_in, django_assert_max_num_queries, url):
    def build(n):
        for i in range(n):
            make_lesson(title=f"Backup {i}", tags=[make_tag()], categories=["tooling"],
                        incidents=[make_incident()])  # fmt: skip

    build(2)
    with django_assert_max_num_queries(12) as few:
        assert client_logged_in.get(url).status_code == 200
    build(15)
    with django_assert_max_num_queries(12) as many:
        assert client_logged_in.get(url).status_code == 200
    assert len(few.captured_queries) == len(many.captured_queries)


def test_detail_query_count_is_fixed(client_logged_in, django_assert_max_num_queries):
    lesson = make_lesson(
        tags=[make_tag(), make_tag()], incidents=[make_incident(), make_incident()]
    )
    with django_assert_max_num_queries(10):
        assert client_logged_in.get(lesson.get_absolute_url()).status_code == 200
