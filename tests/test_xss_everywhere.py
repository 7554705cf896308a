"""No text a user writes can run script anywhere in Debrief.

Hostile payloads (tests/xss_payloads.py) go into every field a person can write — through the
real forms and views, as a browser would post them, and through import (the staff page and the
command) — and then every page that can show that text is fetched, as a full page and as its
htmx partials, and parsed with html5lib the way a browser would build it. A page passes when
nothing on it can run script: no script but the app's own, no event handler, no htmx attribute
the templates did not write or whose value came from an author, no style attribute, no
javascript:/data:/vbscript: URL, no frame, object, base or meta refresh, and Markdown rendered
only inside `hx-disable`. Downloads (Markdown, JSON, CSV, calendar) are never served as HTML,
CSV cells never start like a formula, and template syntax is shown, not evaluated.

Each scenario keeps going after a failure and reports every hole it found at the end.
"""

from __future__ import annotations

import csv
import datetime as dt
import html as html_lib
import io
import itertools
import json
import re
from urllib.parse import urlencode

import html5lib
import markdown as markdown_lib
import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from incidents import exchange_views
from incidents.markdown import render_markdown
from incidents.models import (
    ActionItem,
    ContributingFactor,
    GuidedQuestion,
    Incident,
    Service,
    Team,
    TimelineEntry,
)
from incidents.review_models import ReviewComment
from incidents.write_views import ROW_KINDS, fingerprint
from lessons.models import Lesson
from tests import factories
from tests.xss_payloads import (
    APP_HX_ATTRIBUTES,
    BLAME_PHRASE,
    BREAKOUT_PAYLOADS,
    CSV_PAYLOADS,
    FORMULA_STARTS,
    HTMX_PAYLOADS,
    LINK_PAYLOADS,
    MD_SENTINEL,
    MUTATION_PAYLOADS,
    OWN_PAYLOADS,
    PAYLOADS,
    TEMPLATE_LITERAL,
    TEMPLATE_PAYLOADS,
    clip,
    is_same_origin_path,
    markup_payload,
    payload,
    script_problems,
)

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}
# Every payload, one after the other, in one Markdown field.
ALL_PAYLOADS = "\n\n".join([*PAYLOADS, f"**{MD_SENTINEL}** was {BLAME_PHRASE}."])
# Words that occur in many payloads: searching for them shows highlighted excerpts around them.
SEARCH_WORDS = ["alert", "script", "javascript", "onerror", "hyperlink", "svg", "iframe",
                "request", "onload", "evil", MD_SENTINEL]  # fmt: skip
DOWNLOAD_SUFFIXES = (".md", ".json", ".csv", ".ics")


def make_user(**overrides):
    """Signed in with force_login: no password hash to compute."""
    return factories.make_user(**({"password": None} | overrides))


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class Writer:
    """Hands out payloads so that consecutive fields carry different ones."""

    def __init__(self, start: int = 0):
        self.counter = itertools.count(start)

    def plain(self, length: int = 200) -> str:
        """For a field shown escaped: two markup payloads around a blaming phrase (so the
        blame checker quotes them back)."""
        n = next(self.counter)
        return clip(f"{markup_payload(n)} {BLAME_PHRASE} {markup_payload(n + 1)}", length)

    def md(self) -> str:
        """For a Markdown field: two payloads, a blaming phrase and the bold sentinel."""
        n = next(self.counter)
        return f"{payload(n)}\n\n**{MD_SENTINEL}** was {BLAME_PHRASE}: {payload(n + 1)}"

    def formula(self, kind: int, length: int = 200) -> str:
        """Text that a spreadsheet would run if the CSV export did not neutralise it: the
        `kind`-th formula, then markup."""
        n = next(self.counter)
        return clip(f"{CSV_PAYLOADS[kind % len(CSV_PAYLOADS)]} {markup_payload(n)}", length)


def text_of(html: str) -> str:
    return "".join(html5lib.parse(html, namespaceHTMLElements=False).itertext())


def markdown_sentinels(html: str) -> int:
    root = html5lib.parse(html, namespaceHTMLElements=False)
    return sum(1 for e in root.iter("strong") if (e.text or "").strip() == MD_SENTINEL)


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


class Audit:
    """Checks every response it is given and keeps going, so one run lists every hole."""

    def __init__(self):
        self.problems: list[str] = []
        self.pages = 0
        self.fetched: set[tuple[int, str, bool]] = set()

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.fail(message)

    def check(self, response, where: str, *, expect=(200,)):
        status = response.status_code
        if status >= 500 or (expect and status not in expect):
            self.fail(f"{where}: status {status}, expected {expect}")
        if response.get("Content-Type", "").startswith("text/html"):
            page = body_of(response).decode()
            match = re.search(r"'nonce-([^']+)'", response.get("Content-Security-Policy", ""))
            for problem in script_problems(page, nonce=match.group(1) if match else None):
                self.fail(f"{where}: {problem}")
            self.pages += 1
            response.page = page
        else:
            response.page = ""
        return response

    def get(self, client: Client, url: str, *, htmx=False, expect=(200,)):
        response = client.get(url, headers=HX if htmx else {})
        return self.check(response, f"GET {url}{' [htmx]' if htmx else ''}", expect=expect)

    def post(self, client: Client, url: str, data, *, htmx=False, expect=(200, 302), **kwargs):
        response = client.post(url, data, headers=HX if htmx else {}, **kwargs)
        where = f"POST {url}{' [htmx]' if htmx else ''}"
        response = self.check(response, where, expect=expect)
        location = response.get("Location") or response.get("HX-Redirect") or ""
        if location and not is_same_origin_path(location):
            self.fail(f"{where}: redirects off the site, to {location!r}")
        if response.status_code == 302 and not htmx:
            # Where a plain post lands, with the message it leaves (messages quote titles).
            target = response["Location"].split("#")[0]
            self.check(client.get(target), f"{where} → {target}")
        return response

    def crawl(self, client: Client, seeds: list[str], *, follow: tuple[str, ...], limit=400):
        """Each seed as a page and as an htmx request, every hx-get found on them (the lazy
        panels and partials), and one level of links under `follow`."""
        queue = [(url, htmx, 0) for url in seeds for htmx in (False, True)]
        while queue:
            url, htmx, depth = queue.pop(0)
            # Found links are fetched once per shape: one row's edit form stands for them all.
            key = (id(client), url if depth == 0 else re.sub(r"\d+", "N", url), htmx)
            if key in self.fetched:
                continue
            if len(self.fetched) >= limit:
                self.fail(f"the crawl stopped at {limit} pages before {url}")
                break
            self.fetched.add(key)
            response = self.get(client, url, htmx=htmx, expect=(200, 302))
            if depth >= 2 or not response.page:
                continue
            for found in re.findall(r'\shx-get="([^"]+)"', response.page):
                queue.append((html_lib.unescape(found), True, depth + 1))
            if depth == 0:
                for found in re.findall(r'\shref="([^"#]+)', response.page):
                    link = html_lib.unescape(found)
                    if link.startswith(follow) and not link.endswith(DOWNLOAD_SUFFIXES):
                        queue.append((link, False, depth + 1))

    def assert_clean(self) -> None:
        """One line per distinct problem, with how many pages have it and where first."""
        seen: dict[str, list[str]] = {}
        for entry in self.problems:
            where, _, problem = entry.partition(": ") if entry.startswith(("GET", "POST")) else (
                "", "", entry)  # fmt: skip
            seen.setdefault(problem, []).append(where)
        lines = [f"{problem}  [{len(wheres)}× e.g. {wheres[0][:120]}]"
                 for problem, wheres in seen.items()]  # fmt: skip
        assert not lines, f"{len(lines)} distinct problems:\n" + "\n".join(lines[:60])


def assert_download(audit: Audit, response, where: str, content_type: str) -> bytes:
    """A file to save, never a page: its own type, an attachment, and no sniffing."""
    audit.check(response, where)
    kind = response.get("Content-Type", "")
    if not kind.startswith(content_type) or "html" in kind:
        audit.fail(f"{where}: served as {kind!r}")
    if "attachment" not in response.get("Content-Disposition", ""):
        audit.fail(f"{where}: not an attachment ({response.get('Content-Disposition')!r})")
    if response.get("X-Content-Type-Options") != "nosniff":
        audit.fail(f"{where}: browsers may sniff it (no X-Content-Type-Options: nosniff)")
    return body_of(response)


def check_csv(audit: Audit, client: Client, expected_texts: list[str], kinds: str) -> None:
    """Every cell of the action-item CSV is safe to open in a spreadsheet, and the titles and
    reasons written with formulas are there, neutralised — formulas starting with each of
    `kinds` among them."""
    content = assert_download(
        audit, client.get("/actions/export.csv?status=all"), "GET /actions/export.csv", "text/csv"
    )
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
    cells = [cell for row in rows for cell in row]
    for cell in cells:
        if cell.startswith(FORMULA_STARTS):
            audit.fail(f"CSV cell starts like a formula: {cell[:80]!r}")
    neutralised = {cell[1] for cell in cells if cell.startswith("'") and len(cell) > 1}
    audit.expect(neutralised >= set(kinds), f"formulas starting with each of {kinds!r} in the CSV")
    for text in expected_texts:
        if "'" + text.strip() not in cells and "'" + text not in cells:
            audit.fail(f"CSV lacks the neutralised cell for {text[:60]!r}")


def check_exports(audit: Audit, client: Client, incident: Incident) -> None:
    base = f"/incidents/{incident.slug}"
    assert_download(
        audit, client.get(f"{base}/export.md"), f"GET {base}/export.md", "text/markdown"
    )
    document = assert_download(
        audit, client.get(f"{base}/export.json"), f"GET {base}/export.json", "application/json"
    )
    exported = json.loads(document)["incidents"][0]
    if exported["title"] != incident.title or exported["narrative"] != incident.narrative:
        audit.fail("export.json does not carry the text exactly as written")


def step_urls(incident: Incident) -> list[str]:
    """The eight steps of the guided write-up, and each list with a row open for editing."""
    steps = ["basics", "impact", "timeline", "inside", "factors", "reflect", "actions", "review"]
    urls = [f"/incidents/{incident.slug}/edit/{step}/" for step in steps]
    for slug, kind in ROW_KINDS.items():
        row = kind.model.objects.filter(incident=incident).first()
        if row is not None:
            urls.append(f"/incidents/{incident.slug}/edit/{slug}/?edit={row.pk}")
    return urls


# --- The corpus and the checker ----------------------------------------------------------------


def test_corpus_is_large_and_of_every_kind():
    """At least 50 payloads of our own, of each kind the issue names, and no duplicates."""
    assert len(OWN_PAYLOADS) >= 50
    assert len(PAYLOADS) == len(set(PAYLOADS)) >= 100
    assert any("][" in p and "javascript:" in p for p in LINK_PAYLOADS)  # reference links
    assert any(p.startswith("<javascript:") for p in LINK_PAYLOADS)  # autolinks
    assert any("&#x61;" in p for p in LINK_PAYLOADS)  # entity-encoded schemes
    assert any("<math" in p for p in MUTATION_PAYLOADS) and any(
        "<svg" in p for p in MUTATION_PAYLOADS
    )
    assert all(any(t in p for p in PAYLOADS) for t in ("<noscript", "<template", "<style"))
    assert all(any(t in p for p in HTMX_PAYLOADS) for t in ("hx-get", "hx-on:click",
                                                            "hx-on::before-request", "data-hx-"))  # fmt: skip
    assert any(TEMPLATE_LITERAL in p for p in TEMPLATE_PAYLOADS)
    assert {p[0] for p in CSV_PAYLOADS} == set(FORMULA_STARTS)
    assert "hx-on" not in " ".join(APP_HX_ATTRIBUTES), "the templates must not use hx-on"


def test_checker_sees_every_html_payload_left_raw():
    """The checker is not blind: each HTML payload of ours, put in a page unescaped (or its
    Markdown rendered without the sanitiser), is reported. Those that stay inert in a browser
    even then are listed here."""
    inert = {
        "<![CDATA[<script>alert('cdata')</script>]]>",  # CDATA is a bogus comment in HTML
        "\uff1cscript\uff1ealert('fullwidth')\uff1c/script\uff1e",  # not angle brackets
        "<javascript:alert('autolink')>",  # Markdown escapes it; raw it is an unknown element
        "<vbscript:msgbox(1)>",
        "[percent](%6A%61%76%61%73%63%72%69%70%74:alert(1))",  # browsers do not decode schemes
        "https://ok.example/\"onmouseover=\"alert('bare')",  # text until something links it
    }
    for text in [*LINK_PAYLOADS, *BREAKOUT_PAYLOADS, *MUTATION_PAYLOADS, *HTMX_PAYLOADS]:
        if text in inert:
            continue
        unsanitised = markdown_lib.markdown(text, extensions=["extra"])
        assert script_problems(f"<div>{text}</div>") or script_problems(unsanitised), text


def test_markdown_renderer_neutralises_the_whole_corpus():
    """Each payload alone, and all of them in one text, render to nothing that can run."""
    for text in [*PAYLOADS, ALL_PAYLOADS]:
        assert script_problems(f"<div hx-disable>{render_markdown(text)}</div>") == [], text


# --- Through the forms ---------------------------------------------------------------------------


@pytest.fixture
def world(db):
    team = factories.make_team(name="Payments", slug="payments")
    alice = make_user(username="alice", first_name="Alice", email="alice@example.com",
                      teams=[team])  # fmt: skip
    # A display name with markup in it (people's names come from an admin or a directory).
    bob = make_user(username="bob", first_name=clip(markup_payload(9), 150), last_name="Bob",
                    email="bob@example.com", teams=[team])  # fmt: skip
    service = factories.make_service(name="checkout", slug="checkout", team=team)
    tag = factories.make_tag(name="deploy", slug="deploy")
    return {"team": team, "alice": alice, "bob": bob, "service": service, "tag": tag}


def paste_lines(texts: list[str]) -> str:
    """A block for the timeline paste: one timed line per text, its other lines indented (so
    they continue the entry)."""
    return "\n".join(
        f"{10 + n // 60:02d}:{n % 60:02d} " + text.replace("\r", "").replace("\n", "\n  ")
        for n, text in enumerate(texts)
    )


def local(when: dt.datetime) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%dT%H:%M")


def test_payloads_written_through_the_forms_never_run(world, settings):
    """An author and a reviewer write payloads into every field of the guided write-up, the
    timeline paste and chat-log import, the review, the meeting, the action items and the
    lessons library; no page, partial, download or e-mail that shows them can run script."""
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    alice, bob, team = world["alice"], world["bob"], world["team"]
    author, reviewer = login(alice), login(bob)
    audit, write = Audit(), Writer()
    start = (timezone.now() - dt.timedelta(days=2)).replace(second=0, microsecond=0)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()

    # Basics: a refused post first (no start time) re-renders everything typed.
    # The title starts like a formula (it is a column of the CSV export), then markup.
    title = clip(f"{CSV_PAYLOADS[6]} {write.plain(200)}", 200)
    basics = {
        "title": title, "severity": "SEV2", "summary": write.md(),
        "services": [world["service"].pk], "teams": [team.pk], "tags": [world["tag"].pk],
        "detected_at": local(start + dt.timedelta(minutes=5)), "go": "next",
    }  # fmt: skip
    audit.post(author, "/incidents/new/", basics, expect=(200,))
    audit.post(author, "/incidents/new/", basics, htmx=True, expect=(200,))
    audit.post(author, "/incidents/new/", basics | {"started_at": local(start)}, expect=(302,))
    incident = Incident.objects.get(created_by=alice)
    slug = incident.slug
    edit = f"/incidents/{slug}/edit"

    def version():
        return Incident.objects.get(pk=incident.pk).version

    audit.post(author, f"{edit}/basics/", basics | {
        "started_at": local(start), "summary": write.md(), "version": version(), "go": "save",
    }, htmx=True)  # fmt: skip
    audit.post(author, f"{edit}/impact/", {
        "impact": write.md(), "customer_visible": "true", "data_lost": "false",
        "version": version(), "go": "save",
    }, htmx=True)  # fmt: skip
    questions = list(GuidedQuestion.objects.filter(is_active=True))
    assert questions, "the guided questions come with the migrations"
    answers = {f"answer-{q.pk}": write.md() for q in questions}
    audit.post(author, f"{edit}/inside/", {
        "narrative": ALL_PAYLOADS, **answers, "version": version(), "go": "save",
    }, htmx=True)  # fmt: skip
    audit.post(author, f"{edit}/reflect/", {
        "went_well": write.md(), "lucky": write.md(), "lessons": write.md(),
        "version": version(), "go": "save",
    })  # fmt: skip
    # Autosave of one field, as the page does while the author types.
    audit.post(author, f"{edit}/autosave/", {
        "autosave": "lucky", "lucky": write.md(), "version": version(),
    }, htmx=True, expect=(200,))  # fmt: skip
    # A stale autosave: the conflict shows their saved text back.
    audit.post(author, f"{edit}/autosave/", {
        "autosave": "went_well", "went_well": write.md(), "version": 1,
    }, htmx=True, expect=(409,))  # fmt: skip

    # Timeline: rows one by one, an edit, a refused row, a pasted block and a chat log.
    for kind, minutes in (("detection", 5), ("action", 20), ("resolution", 50)):
        audit.post(author, f"{edit}/timeline/add/", {
            "new-at": local(start + dt.timedelta(minutes=minutes)), "new-kind": kind,
            "new-text": write.md(),
        }, htmx=True)  # fmt: skip
    audit.post(author, f"{edit}/timeline/add/", {"new-at": "", "new-kind": "action",
                                                 "new-text": write.md()}, htmx=True)  # fmt: skip
    entry = TimelineEntry.objects.filter(incident=incident).first()
    audit.get(author, f"{edit}/timeline/{entry.pk}/", htmx=True)
    audit.post(author, f"{edit}/timeline/{entry.pk}/", {
        f"row{entry.pk}-at": local(entry.at), f"row{entry.pk}-kind": entry.kind,
        f"row{entry.pk}-text": write.md(),
        "row_base": fingerprint(entry, ROW_KINDS["timeline"].fields),
    }, htmx=True)  # fmt: skip
    # A stale edit: 409 with their text shown next to the form.
    audit.post(author, f"{edit}/timeline/{entry.pk}/", {
        f"row{entry.pk}-at": local(entry.at), f"row{entry.pk}-kind": entry.kind,
        f"row{entry.pk}-text": write.md(), "row_base": "stale",
    }, htmx=True, expect=(409,))  # fmt: skip
    audit.post(author, f"{edit}/timeline/paste/", {"text": paste_lines(PAYLOADS), "action": "preview"},
               htmx=True)  # fmt: skip
    # Every payload in the preview; a fifth of them saved (all are in the narrative anyway).
    audit.post(author, f"{edit}/timeline/paste/", {"text": paste_lines(PAYLOADS[::5]),
                                                   "action": "add-skipping"}, htmx=True)  # fmt: skip
    transcript = "\n".join(
        f"[{9 + n // 60:02d}:{n % 60:02d}] mallory: " + text.replace("\r", "")
        for n, text in enumerate(PAYLOADS[::9])
    )
    chat = f"/incidents/{slug}/timeline/import/"
    day = timezone.localtime(start).date().isoformat()
    preview = audit.post(author, chat, {"step": "preview", "text": transcript, "zone": "UTC",
                                        "day": day}, htmx=True)  # fmt: skip
    slack = [
        {"type": "message", "ts": str(int(start.timestamp()) + n * 60), "user": "U1",
         "user_profile": {"display_name": clip(payload(n), 80)},
         "text": html_lib.escape(payload(n + 1))}
        for n in range(0, len(PAYLOADS), 7)
    ] + [{"type": "message", "subtype": "<svg onload=alert('subtype')>", "ts": "1"}]  # fmt: skip
    upload = SimpleUploadedFile("<img src=x onerror=alert('file')>.json",
                                json.dumps(slack).encode(), "application/json")  # fmt: skip
    audit.post(author, chat, {"step": "preview", "file": upload, "zone": "UTC", "day": day})
    signed = re.search(r'name="payload" value="([^"]+)"', preview.page).group(1)
    picks = [str(n) for n in range(len(PAYLOADS[::9]))]
    audit.post(author, chat, {"step": "import", "payload": html_lib.unescape(signed),
                              "zone_name": "UTC", "pick": picks}, expect=(302,))  # fmt: skip

    # Contributing factors: one accepted as a risk (its reason is plain text), one addressed,
    # one to be deleted (its description becomes the trash label).
    entries = list(TimelineEntry.objects.filter(incident=incident).values_list("pk", flat=True))
    for accepted in (True, False, False):
        data = {"new-category": "monitoring", "new-description": write.md(),
                "new-evidence": entries[:2]}  # fmt: skip
        if accepted:
            data |= {"new-accepted_risk": "on", "new-accepted_risk_reason": write.plain(500)}
        audit.post(author, f"{edit}/factors/add/", data, htmx=True)
    factors = list(ContributingFactor.objects.filter(incident=incident))
    audit.post(author, f"{edit}/factors/add/", {"new-category": "", "new-description": write.md(),
               "new-accepted_risk": "on"}, htmx=True)  # fmt: skip

    # Action items: titles that look like formulas; closed as done (evidence), as won't do
    # (a reason), and one left open and due tomorrow (it is in the reminder e-mail).
    for n, kind in enumerate(("learn", "process", "prevent", "detect", "mitigate", "learn")):
        audit.post(author, f"{edit}/actions/add/", {
            "new-title": write.formula(n), "new-kind": kind, "new-team": team.pk,
            "new-owner": alice.pk, "new-due": tomorrow, "new-priority": "high",
            "new-addresses": [factors[1].pk], "new-description": write.md(),
        }, htmx=True)  # fmt: skip
    items = ActionItem.objects.filter(incident=incident).order_by("pk")
    done, dropped, still_open, _other, _fifth, spare = items
    wont_do_reason = write.formula(5, 5000)
    audit.post(author, f"/actions/{done.pk}/edit/", {
        "version": done.version, "status": "done", "change_url": "javascript:alert('close')",
        "verification": write.plain(5000),
    }, expect=(200,))  # fmt: skip
    audit.post(author, f"/actions/{done.pk}/edit/", {
        "version": done.version, "status": "done",
        "change_url": "https://ok.example/'><svg/onload=alert('change')>",
        "verification": write.plain(5000), "next": "javascript:alert('next')",
    }, expect=(302,))  # fmt: skip
    audit.post(author, f"/actions/{dropped.pk}/edit/", {
        "version": dropped.version, "status": "wont_do", "reason": wont_do_reason,
    }, htmx=True)  # fmt: skip
    # A stale save: 409, and the conflict message names the item.
    audit.post(author, f"/actions/{dropped.pk}/edit/", {"version": 1, "status": "open"},
               htmx=True, expect=(409,))  # fmt: skip
    audit.get(author, f"/actions/{still_open.pk}/edit/", htmx=True)
    audit.post(author, "/actions/bulk/", {
        "items": [still_open.pk], "status": "wont_do", "reason": "", "owner": write.plain(150),
    }, htmx=True)  # fmt: skip

    # Deleted rows go to the trash with an Undo that names them.
    audit.post(author, f"{edit}/factors/{factors[2].pk}/delete/", {}, htmx=True)
    audit.post(author, f"{edit}/actions/{spare.pk}/delete/", {})

    # The blame checker as the author types, and a dismissed finding.
    for field, text in (("summary", write.plain(2000)), ("timeline", write.md())):
        audit.post(author, f"{edit}/blame/", {"field": field, field: text}, htmx=True)
        audit.post(author, "/incidents/new/blame/", {"field": field, field: text}, htmx=True)
    phrase = write.plain(200)
    audit.post(author, f"{edit}/blame/dismiss/", {
        "dismiss_field": "summary", "dismiss_rule": "human-error", "dismiss_phrase": phrase,
        "source": "summary", "summary": f"{phrase} {BLAME_PHRASE}",
    }, htmx=True)  # fmt: skip

    # The review: people, moves with notes, comments and replies, the meeting, readers.
    review = f"/incidents/{slug}"
    audit.post(author, f"{review}/people/", {"role": "reviewer", "username": write.plain(150)},
               htmx=True)  # fmt: skip
    audit.post(author, f"{review}/people/", {"role": "reviewer", "username": "bob"}, htmx=True)
    audit.post(author, f"{edit}/review/", {"action": "nothing"}, htmx=True)
    audit.post(author, f"{review}/review/submit/", {"note": write.plain(4000),
                                                    "next": "//evil.example/"})  # fmt: skip
    audit.post(reviewer, f"{review}/comments/", {"anchor": "incident", "body": write.md()},
               htmx=True)  # fmt: skip
    audit.post(reviewer, f"{review}/comments/", {"anchor": f"timeline_entry:{entry.pk}",
                                                 "body": write.md()})  # fmt: skip
    audit.post(reviewer, f"{review}/comments/", {"anchor": write.plain(100), "body": ""},
               htmx=True)  # fmt: skip
    thread = ReviewComment.objects.filter(incident=incident).first()
    audit.post(author, f"{review}/comments/", {"parent": thread.pk, "body": write.md()},
               htmx=True)  # fmt: skip
    doomed = ReviewComment.objects.create(incident=incident, author=bob, body=write.md())
    audit.post(reviewer, f"{review}/comments/{doomed.pk}/delete/", {})
    audit.post(reviewer, f"{review}/review/request-changes/", {"note": write.plain(4000)})
    audit.post(author, f"{review}/review/submit/", {"note": write.plain(4000)})
    audit.post(reviewer, f"{review}/review/approve/", {"note": write.plain(4000)},
               htmx=True)  # fmt: skip
    audit.post(reviewer, f"{review}/review/approve/", {
        "note": write.plain(4000), "open_comments_reason": write.plain(4000),
    })  # fmt: skip
    audit.post(reviewer, f"{review}/review/reopen/", {"reason": write.plain(4000)})
    audit.post(reviewer, f"{review}/review/approve/", {"open_comments_reason": write.plain(4000)})
    # Shown through |urlize on the review page, and written into the .ics file.
    location = (
        clip(
            'https://ok.example/"onmouseover="alert(1) www.ok.example/<script>alert(2)</script> '
            'javascript:alert(3) x@ok.example"onclick="alert(4) ' + write.plain(200),
            250,
        )
        + "\r\nATTACH:https://evil.example/x.exe"
    )
    meeting = {
        "starts_at": local(timezone.now() + dt.timedelta(days=2)), "duration": 60,
        "location": location, "facilitator": alice.pk, "attendees": [bob.pk],
        "more_attendees": "", "agenda": write.md(),
    }  # fmt: skip
    audit.post(author, f"{review}/meeting/", meeting | {"more_attendees": write.plain(200)},
               htmx=True)  # fmt: skip
    audit.post(author, f"{review}/meeting/", meeting, htmx=True)
    audit.post(author, f"{review}/readers/", {"visibility": "everyone",
                                              "visible_users": write.plain(200)}, htmx=True)  # fmt: skip
    incident.refresh_from_db()
    assert incident.status == Incident.Status.PUBLISHED, "the review moves all went through"

    # The lessons library: a story of one's own, a refused one, and the incident's lessons.
    audit.post(author, "/lessons/new/", {
        "title": write.plain(200), "kind": "story", "incident_slugs": "", "body": write.md(),
        "do_differently": write.md(), "categories": ["monitoring"], "tags": [world["tag"].pk],
        "is_published": "on",
    }, expect=(302,))  # fmt: skip
    audit.post(author, "/lessons/new/", {
        "title": write.plain(200), "kind": "from_incident", "incident_slugs": write.plain(200),
        "body": write.md(),
    }, expect=(200,))  # fmt: skip
    audit.post(author, f"/lessons/from/{slug}/publish/", {}, expect=(302,))

    # Reflected input: query parameters are echoed into forms and messages.
    for text in (payload(0), payload(20), payload(40), "\"><svg/onload=alert('q')>"):
        for url in ("/incidents/", "/actions/", "/lessons/", "/incidents/similar/", "/metrics/"):
            params = {"q": text, "owner": text, "team": text, "incident": text, "since": text,
                      "services": text, "exclude": text}  # fmt: skip
            audit.check(author.get(url, params), f"GET {url} with a reflected payload")
            audit.check(author.get(url, params, headers=HX), f"GET {url} [htmx] reflected")

    for path in (
        "/nowhere/<script>alert(1)</script>/",
        f"{edit}/%3Csvg%20onload=alert(1)%3E/",
        f"/actions/{done.pk}/?next=javascript:alert(1)",
    ):
        audit.get(author, path, expect=(200, 404))

    # A plain write-up to stand beside it: its similar-incidents panel lists ours.
    sibling = factories.make_incident(
        title="Alert script onerror javascript svg iframe hyperlink", authors=[bob],
        services=[world["service"]], teams=[team],
    )  # fmt: skip

    # Every page that shows the text, as author and as reviewer, with its lazy panels.
    action_ids = ActionItem.objects.filter(incident=incident).values_list("pk", flat=True)
    lessons = Lesson.objects.values_list("slug", flat=True)
    seeds = [
        "/", "/incidents/", f"/incidents/{slug}/", f"/incidents/{sibling.slug}/",
        f"/incidents/{slug}/history/", f"/incidents/{slug}/review/",
        f"/incidents/{slug}/review/?edit=meeting", f"/incidents/{slug}/review/?show=all",
        f"/incidents/{slug}/timeline/import/", "/trash/", "/actions/",
        f"/actions/?incident={slug}&status=all", f"/teams/{team.slug}/", "/metrics/",
        "/lessons/", f"/incidents/?service={world['service'].slug}", "/preferences/",
        "/incidents/similar/?" + urlencode({"q": title, "services": world["service"].slug}),
        *step_urls(incident),
        *(f"/actions/{pk}/" for pk in action_ids),
        *(f"/lessons/{lesson}/" for lesson in lessons),
        *(f"/lessons/{lesson}/edit/" for lesson in lessons),
        *(f"/incidents/?q={word}" for word in SEARCH_WORDS),
        *(f"/lessons/?q={word}" for word in SEARCH_WORDS),
    ]  # fmt: skip
    audit.crawl(author, seeds, follow=(f"/incidents/{slug}/", "/actions/", "/lessons/"))
    audit.crawl(reviewer, [f"/incidents/{slug}/", f"/incidents/{slug}/review/", "/"], follow=())

    # The text is shown, escaped — not dropped, and template syntax not evaluated.
    detail = audit.get(author, f"/incidents/{slug}/").page
    heading = html5lib.parse(detail, namespaceHTMLElements=False).find(".//h1")
    audit.expect(heading is not None and "".join(heading.itertext()) == title,
                 "the title is the page's heading, as written")  # fmt: skip
    audit.expect(TEMPLATE_LITERAL in text_of(detail) and "{% debug %}" in text_of(detail),
                 "template syntax is shown as written")  # fmt: skip
    audit.expect(markdown_sentinels(detail) >= 8, "the Markdown sections were rendered")
    search = audit.get(author, "/incidents/?q=onerror").page
    audit.expect("<mark>" in search, "search shows highlighted excerpts of the payloads")
    similar = audit.get(author, f"/incidents/similar/?exclude={sibling.slug}"
                                f"&services={world['service'].slug}", htmx=True).page  # fmt: skip
    audit.expect(title in text_of(similar), "the similar panel lists the write-up by title")
    findings = audit.get(author, f"{edit}/reflect/").page
    audit.expect("<mark>" in findings, "the blame checker quotes the text around findings")

    # Downloads, the reminder e-mail.
    check_exports(audit, author, incident)
    # Forms strip leading whitespace, so tab- and CR-first formulas come in by import only.
    check_csv(audit, author, [done.title, dropped.title, wont_do_reason], kinds="=+-@")
    ics = assert_download(audit, author.get(f"{review}/meeting.ics"), "GET meeting.ics",
                          "text/calendar")  # fmt: skip
    calendar = Calendar.from_ical(ics) if ics.startswith(b"BEGIN:VCALENDAR") else Calendar()
    events = calendar.walk("VEVENT")
    if len(events) != 1 or "ATTACH" in events[0] or calendar.walk("VALARM"):
        audit.fail("the meeting's location added lines to the calendar file")
    elif " ".join(str(events[0]["LOCATION"]).split()) != " ".join(location.split()):
        audit.fail("the calendar file does not carry the meeting's location as one value")
    call_command("send_reminders", stdout=io.StringIO())
    pages = [content for m in mail.outbox if alice.email in m.to
             for content, kind in m.alternatives if kind == "text/html"]  # fmt: skip
    assert pages, "the open item due tomorrow is reminded, in an HTML e-mail too"
    for content in pages:
        for problem in script_problems(content, allow_style=True):
            audit.fail(f"reminder e-mail: {problem}")

    audit.assert_clean()
    assert audit.pages >= 150


# --- Through import ---------------------------------------------------------------------------


def imported_record(
    write: Writer, *, slug: str, title: str, services, teams, tags, formulas: int
) -> dict:
    """A record of the CONTRACT format with a payload in every text field."""
    start = timezone.now() - dt.timedelta(days=3)

    def at(minutes: int) -> str:
        return (start + dt.timedelta(minutes=minutes)).isoformat()

    return {
        "slug": slug, "title": title, "severity": "SEV1", "status": "published",
        "summary": write.md(), "impact": write.md(), "narrative": ALL_PAYLOADS,
        "started_at": at(0), "detected_at": at(5), "mitigated_at": at(30), "resolved_at": at(60),
        "services": services, "teams": teams, "tags": tags,
        "authors": ["alice"], "reviewers": ["-1+1"], "visibility": "everyone",
        "timeline": [{"at": at(n), "kind": "action", "text": write.md()} for n in range(6)],
        "contributing_factors": [
            {"category": "monitoring", "description": write.md(), "evidence_entries": [0, 1],
             "accepted_risk": True, "accepted_risk_reason": write.plain(500)},
            {"category": "change", "description": write.md()},
        ],
        "action_items": [
            {"title": write.formula(formulas), "description": write.md(), "team": teams[0],
             "owner": "@sum", "due": "2026-01-15", "priority": "high", "status": "open",
             "addresses": [1], "tracker_url": "https://ok.example/x\"onmouseover=\"alert(1)"},
            {"title": write.formula(formulas + 1), "description": write.md(), "team": teams[-1],
             "owner": "+cmd", "due": "2026-02-01", "priority": "low", "status": "wont_do",
             "wont_do_reason": write.formula(formulas + 2, 5000)},
            {"title": write.formula(formulas + 3), "description": write.md(), "team": teams[0],
             "owner": "alice", "due": "2026-03-01", "priority": "medium", "status": "done",
             "evidence": write.md(), "completed_at": at(2000)},
        ],
        "answers": [
            {"question": write.plain(300), "text": write.md()},
            {"question": GuidedQuestion.objects.filter(is_active=True).first().prompt,
             "text": write.md()},
        ],
        "went_well": write.md(), "lucky": write.md(), "lessons": ALL_PAYLOADS,
    }  # fmt: skip


def test_imported_payloads_never_run(world, staff, tmp_path, monkeypatch):
    """Staff import write-ups whose every field — names of teams, services and tags, the
    people it creates, guided questions it brings along — holds payloads, once through the
    import page and once with the command; no page that shows them can run script."""
    monkeypatch.setattr(exchange_views, "upload_dir", lambda: tmp_path)
    alice = world["alice"]
    audit, write = Audit(), Writer(start=57)
    teams = [clip(f"{markup_payload(n)} team {n}", 100) for n in (3, 11, 42)]
    services = [clip(f"{markup_payload(n)} service {n}", 100) for n in (5, 13, 60)]
    tags = [clip(f"{markup_payload(n)} tag {n}", 60) for n in (7, 17)]
    first = imported_record(write, slug="imported-one", title=write.plain(200),
                            services=services, teams=teams, tags=tags, formulas=0)  # fmt: skip
    second = imported_record(write, slug="imported-two", title=write.formula(6),
                             services=services[:1], teams=teams[:1], tags=[], formulas=3)  # fmt: skip
    second["reviewers"] = ["x.y-z"]

    # The staff page: preview (it lists the names it will create), then confirm.
    staff_client = login(staff)
    document = json.dumps({"format": "debrief/1", "incidents": [first]}).encode()
    name = "<img src=x onerror=alert('upload')>.json"
    preview = audit.post(staff_client, "/import/", {
        "step": "preview", "create_users": "on",
        "file": SimpleUploadedFile(name, document, "application/json"),
    }, htmx=True)  # fmt: skip
    token = re.search(r'name="token" value="([^"]+)"', preview.page).group(1)
    audit.post(staff_client, "/import/", {"step": "confirm", "token": token}, expect=(302,))
    # A refused document: every problem is reported with the value that caused it.
    bad = dict(first, slug="refused", severity=payload(1), title=payload(2))
    bad["action_items"] = [dict(first["action_items"][0], tracker_url="javascript:alert(1)")]
    audit.post(staff_client, "/import/", {
        "step": "preview", "file": SimpleUploadedFile(
            "bad.json", json.dumps({"format": "debrief/1", "incidents": [bad]}).encode()),
    })  # fmt: skip
    assert not Incident.objects.filter(slug="refused").exists()

    # The command.
    path = tmp_path / "second.json"
    path.write_text(json.dumps({"format": "debrief/1", "incidents": [second]}), "utf-8")
    call_command("import_incidents", str(path), "--create-users", "--no-progress",
                 stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    one = Incident.objects.get(slug="imported-one")
    two = Incident.objects.get(slug="imported-two")
    assert one.title == first["title"] and one.narrative == ALL_PAYLOADS
    assert Team.objects.filter(name=teams[0]).exists()
    assert Service.objects.filter(name=services[0]).exists()
    assert GuidedQuestion.objects.filter(prompt=first["answers"][0]["question"]).exists()

    author = login(alice)
    author.post(f"/lessons/from/{one.slug}/publish/")
    team_slugs = Team.objects.filter(name__in=teams).values_list("slug", flat=True)
    service_slugs = [Service.objects.get(name=name).slug for name in services]
    items = ActionItem.objects.filter(incident__in=[one, two]).values_list("pk", flat=True)
    seeds = []
    for incident in (one, two):
        seeds += [f"/incidents/{incident.slug}/", f"/incidents/{incident.slug}/history/",
                  f"/incidents/{incident.slug}/review/", *step_urls(incident)]  # fmt: skip
    seeds += [
        "/", "/incidents/", "/actions/?status=all", "/actions/facets/?status=all", "/metrics/",
        "/lessons/", *(f"/teams/{s}/" for s in team_slugs), *(f"/actions/{pk}/" for pk in items),
        *(f"/incidents/?service={s}" for s in service_slugs),
        *(f"/incidents/?q={word}" for word in SEARCH_WORDS),
        *(f"/lessons/?q={word}" for word in SEARCH_WORDS[:4]),
        *(f"/lessons/{s}/" for s in Lesson.objects.values_list("slug", flat=True)),
        f"/incidents/similar/?exclude={two.slug}&services={service_slugs[0]}"
        "&categories=monitoring,change",
    ]  # fmt: skip
    audit.crawl(author, seeds, follow=(f"/incidents/{one.slug}/", "/actions/", "/teams/"))
    audit.crawl(login(staff), ["/", "/incidents/", f"/incidents/{one.slug}/", "/actions/"],
                follow=())  # fmt: skip

    detail = audit.get(author, f"/incidents/{one.slug}/").page
    audit.expect(TEMPLATE_LITERAL in text_of(detail), "template syntax is shown as written")
    audit.expect(teams[0] in text_of(detail) and tags[0] in text_of(detail),
                 "team and tag names are shown as written")  # fmt: skip
    audit.expect(markdown_sentinels(detail) >= 8, "the Markdown sections were rendered")
    similar = audit.get(author, f"/incidents/similar/?exclude={two.slug}"
                                f"&services={service_slugs[0]}", htmx=True).page  # fmt: skip
    audit.expect(one.title in text_of(similar) and services[0] in text_of(similar),
                 "the similar panel names the write-up and the service it shares")  # fmt: skip

    check_exports(audit, author, one)
    items = ActionItem.objects.filter(incident__in=[one, two])
    check_csv(audit, author, [item.title for item in items] +
              [item.wont_do_reason for item in items if item.wont_do_reason],
              kinds="".join(FORMULA_STARTS))  # fmt: skip
    audit.assert_clean()
    assert audit.pages >= 100


# --- The blame checker, payload by payload ----------------------------------------------------


def test_blame_checker_quotes_every_payload_inertly(world):
    """Each payload beside a blaming phrase, on the new write-up's page and on a step of an
    existing one: the findings quote the text around the phrase, and nothing in them runs."""
    alice = world["alice"]
    incident = factories.make_incident(status="draft", authors=[alice])
    client, audit = login(alice), Audit()
    quoted = 0
    for text in PAYLOADS:
        for url, field, value in (
            ("/incidents/new/blame/", "summary", f"{text} {BLAME_PHRASE} {text}"),
            (f"/incidents/{incident.slug}/edit/blame/", "timeline", f"{text} {BLAME_PHRASE}"),
            (f"/incidents/{incident.slug}/edit/blame/", "action", f"Retrain {text}"),
        ):
            response = audit.post(client, url, {"field": field, field: value}, htmx=True)
            quoted += response.page.count("<mark>")
    audit.assert_clean()
    assert quoted >= len(PAYLOADS) * 2, "the findings quote the text"
