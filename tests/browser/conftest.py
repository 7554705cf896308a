import importlib
import os
import sqlite3

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection, connections
from django.db.utils import load_backend
from django.test.testcases import LiveServerThread

# Playwright's sync API runs an event loop in this thread; the live server runs Django in
# another thread, and the test itself only touches the database through plain ORM calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


# --------------------------------------------------------------------------------------------
# The live server: use `site`, never pytest-django's `live_server`.
# --------------------------------------------------------------------------------------------


def _file_connection(settings):
    return load_backend(settings["ENGINE"]).DatabaseWrapper(settings, "default")


class _OwnConnectionServer(ThreadedWSGIServer):
    """Each request thread gets its own connection to the database file, as in production.
    ThreadedWSGIServer.close_request() closes it when the request is done."""

    database = None

    def process_request_thread(self, request, client_address):
        if self.database is not None:
            connections["default"] = _file_connection(self.database)
        super().process_request_thread(request, client_address)


class _ServerThread(LiveServerThread):
    server_class = _OwnConnectionServer

    def __init__(self, *args, database=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.database = database

    def _create_server(self, connections_override=None):
        server = super()._create_server(connections_override=None)
        server.database = self.database
        return server


@pytest.fixture
def live_server():
    """Shadows pytest-django's: see `site` for why browser tests must not use it."""
    pytest.fail("Browser tests use the `site` fixture (base = site()), not live_server.")


@pytest.fixture
def site(transactional_db, tmp_path):
    """A callable: `base = site()` starts a live server once the test has made its data and
    returns its base URL ("http://localhost:PORT").

    Pages send several requests at once (htmx panels loading, autosave, the blame check).
    pytest-django's live_server shares the test's one in-memory SQLite connection between all
    its request threads, where two requests at the same moment fail ("table is locked",
    "SQLite objects created in a thread can only be used in that same thread", half-read
    results). Here SQLite runs from a WAL file copied from the test database, with one
    connection per request thread, as in production; PostgreSQL needs nothing special. The
    test's own queries after start() go to the same database, so it can check what the pages
    wrote.
    """
    state = {}

    def start():
        assert "thread" not in state, "site() starts one server per test"
        database = None
        if connection.vendor == "sqlite":
            path = tmp_path / "site.sqlite3"
            connection.ensure_connection()
            target = sqlite3.connect(path)
            connection.connection.backup(target)
            target.close()
            database = {**connection.settings_dict, "NAME": str(path)}
            state["original"] = connections["default"]
            connections["default"] = _file_connection(database)
        thread = _ServerThread("localhost", static_handler=StaticFilesHandler, database=database)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        state["thread"] = thread
        return f"http://localhost:{thread.port}"

    yield start
    if "thread" in state:
        state["thread"].terminate()
    if "original" in state:
        connections["default"].close()
        connections["default"] = state["original"]


@pytest.fixture
def guided_questions(transactional_db):
    """The default guided questions of the write-up's "From the inside" step, in order.

    A data migration adds them, but transactional tests empty every table when they end, so
    whether they exist would otherwise depend on which tests ran before.
    """
    from incidents.models import GuidedQuestion

    migration = importlib.import_module("incidents.migrations.0002_default_questions")
    return [
        GuidedQuestion.objects.get_or_create(
            prompt=prompt, defaults={"help_text": help_text, "position": n * 10}
        )[0]
        for n, (prompt, help_text) in enumerate(migration.DEFAULT_QUESTIONS, start=1)
    ]
