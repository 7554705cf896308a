"""Production runs background work through a queue table in the database (django-tasks-db), so
any app server may enqueue and any `db_worker` may run it: nothing waits in one process's
memory. Guards: enqueuing stores a row and sends nothing; the worker delivers each notice
exactly once, also when run again."""

import pytest
from django.core.management import call_command
from django.tasks import task_backends
from django_tasks_db.models import DBTaskResult

from incidents.lifecycle import submit_for_review
from tests.factories import make_incident, make_user

pytestmark = pytest.mark.django_db(transaction=True)

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_production_settings_choose_the_database_queue(monkeypatch):
    import importlib

    import config.settings as project_settings

    monkeypatch.setenv("DJANGO_DEBUG", "0")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 60)
    monkeypatch.setenv("DEBRIEF_TASKS_BACKEND", "database")
    try:
        reloaded = importlib.reload(project_settings)
        assert reloaded.TASKS["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)


def test_notices_wait_in_the_database_until_a_worker_sends_them_once(settings, mailoutbox):
    settings.TASKS = DATABASE_QUEUE
    assert task_backends["default"].__class__.__name__ == "DatabaseBackend"
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="draft", authors=[author], reviewers=[reviewer])

    submit_for_review(incident=incident, by=author, note="Please look at detection")

    assert DBTaskResult.objects.count() == 1
    assert mailoutbox == []  # queued, not sent by the request

    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    assert [message.to for message in mailoutbox] == [[reviewer.email]]
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"

    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    assert len(mailoutbox) == 1
