"""backup and restore, on SQLite (online backup API) and PostgreSQL (pg_dump / pg_restore
against the test database's own settings)."""

import io
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction

from incidents import backup as backup_module
from incidents import exchange
from incidents.backup import BackupError, backup, current_counts, restore
from incidents.models import Incident, TimelineEntry
from tests.factories import make_entry, make_incident, make_user

# Backups read committed data through their own connection, so the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite backup")
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_dump backup")

INCIDENTS = "incidents_incident"
ENTRIES = "incidents_timelineentry"


def build(n=2):
    for _ in range(n):
        incident = make_incident(authors=[make_user(password=None)])
        for _ in range(3):
            make_entry(incident)


def run(command, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_backup_prints_size_and_counts_and_verifies(tmp_path):
    """The copy is verified and the command says how big it is and what it holds."""
    build(2)
    target = tmp_path / "debrief.backup"
    out, _ = run("backup", str(target))
    assert target.stat().st_size > 0
    assert "Backed up the" in out
    assert " kB) in " in out or " MB) in " in out
    assert "Verified: " in out
    assert "Rows: 2 incidents · 6 timeline entries" in out
    assert not list(tmp_path.glob(".*partial")), "no half-written file is left behind"
    out, _ = run("backup", str(target), "-v", "2")
    assert f"  {INCIDENTS}: 2" in out


@on_sqlite
def test_sqlite_backup_is_one_self_contained_verified_file(tmp_path):
    build(1)
    target = tmp_path / "copy.sqlite3"
    backup(target)
    copy = sqlite3.connect(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute(f"SELECT COUNT(*) FROM {INCIDENTS}").fetchone() == (1,)
    finally:
        copy.close()
    assert not (tmp_path / "copy.sqlite3-wal").exists()


@on_postgres
def test_postgres_backup_is_a_custom_format_dump_listed_by_pg_restore(tmp_path):
    build(1)
    target = tmp_path / "copy.dump"
    result = backup(target)
    assert target.read_bytes()[:5] == b"PGDMP"
    assert result.check.startswith("pg_restore --list: ok")
    assert result.counts[INCIDENTS] == 1


def test_restore_refuses_a_database_that_holds_data(tmp_path):
    """Without --force a restore never overwrites people's data."""
    build(1)
    target = tmp_path / "b"
    backup(target)
    make_incident(title="Written after the backup")
    with pytest.raises(CommandError, match=r"The database is not empty \(2 incidents"):
        run("restore", str(target))
    assert Incident.objects.filter(title="Written after the backup").exists()


def test_restore_force_puts_the_backup_back(tmp_path):
    """--force: the database is exactly the backup again (same counts, same export)."""
    build(2)
    target = tmp_path / "b"
    result = backup(target)
    document = exchange.export_document()
    Incident.objects.first().delete()
    build(1)
    out, _ = run("restore", str(target), "--force")
    assert "Restored" in out and "Rows now: 2 incidents · 6 timeline entries" in out
    assert current_counts() == result.counts
    assert exchange.export_document() == document


def test_restore_into_an_empty_database(tmp_path):
    """A freshly emptied database takes the backup without --force."""
    build(2)
    target = tmp_path / "b"
    result = backup(target)
    call_command("flush", interactive=False, verbosity=0)
    assert current_counts()[INCIDENTS] == 0
    restored = restore(target)
    assert restored.counts == result.counts
    assert restored.warnings == []


def test_restore_rejects_files_that_are_not_backups(tmp_path):
    junk = tmp_path / "junk"
    junk.write_text("hello")
    with pytest.raises(BackupError, match="is not a Debrief backup"):
        restore(junk)
    with pytest.raises(BackupError, match="no such file"):
        restore(tmp_path / "missing")
    other_engine = tmp_path / "other"
    if connection.vendor == "sqlite":
        other_engine.write_bytes(b"PGDMP" + b"\x00" * 100)
        message = "is a PostgreSQL backup but this database is SQLite"
    else:
        sqlite3.connect(other_engine).execute("CREATE TABLE t (x)").connection.close()
        message = "is a SQLite backup but this database is PostgreSQL"
    with pytest.raises(BackupError, match=message):
        restore(other_engine, force=True)


@on_sqlite
def test_restore_rejects_a_sqlite_file_that_is_not_debriefs(tmp_path):
    stranger = tmp_path / "other.sqlite3"
    db = sqlite3.connect(stranger)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.commit()
    db.close()
    with pytest.raises(BackupError, match="not one of Debrief's"):
        restore(stranger, force=True)


def test_backup_to_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run("backup", str(tmp_path / "nope" / "b"))


def test_missing_pg_dump_is_named(monkeypatch, tmp_path):
    """Without the client tools the message names pg_dump and how to install it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(backup_module, "TOOL_DIRS", str(tmp_path / "none" / "*"))
    with pytest.raises(BackupError, match=r"pg_dump was not found on the PATH.*postgresql-client"):
        backup_module.find_tool("pg_dump")
    if connection.vendor == "postgresql":
        with pytest.raises(CommandError, match="pg_dump was not found"):
            run("backup", str(tmp_path / "b"))


# --- A backup while someone writes ---------------------------------------------------------


class Writer(threading.Thread):
    """Writes incidents with three timeline entries each, one transaction per incident, until
    stopped. A torn copy would hold an incident without its three entries."""

    def __init__(self, alias, settings_dict=None):
        super().__init__(daemon=True)
        self.alias = alias
        self.settings_dict = settings_dict
        self.stop = threading.Event()
        self.written = 0
        self.error = None

    def run(self):
        if self.settings_dict is not None:
            connections[self.alias] = wrapper(self.settings_dict, self.alias)
        try:
            while not self.stop.is_set():
                with transaction.atomic(using=self.alias):
                    incident = Incident(title="Written during the backup",
                                        slug=f"during-{self.written}")  # fmt: skip
                    incident.save(using=self.alias)
                    TimelineEntry.objects.using(self.alias).bulk_create(
                        [TimelineEntry(incident=incident, at=incident.created_at, text=f"e{n}")
                         for n in range(3)]
                    )  # fmt: skip
                self.written += 1
        except Exception as error:  # reported by the test
            self.error = error
        finally:
            connections[self.alias].close()
            if self.settings_dict is not None:
                del connections[self.alias]

    def wait_for(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        while self.written < count and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.error is None, self.error
        assert self.written >= count


def wrapper(settings_dict, alias):
    return connections["default"].__class__(settings_dict, alias)


@contextmanager
def scratch_sqlite(tmp_path, name, *, schema_from=None):
    """A file-backed SQLite database under an alias of its own, registered for this thread
    only (the test database lives in memory, where a second writer would share one cache and
    lock whole tables). Yields (alias, settings) for threads to open their own connection."""
    alias = f"scratch_{name}"
    path = tmp_path / f"{name}.sqlite3"
    if schema_from is not None:
        target = sqlite3.connect(path)
        schema_from.backup(target)
        target.close()
    settings_dict = {**connections["default"].settings_dict, "NAME": str(path)}
    connections[alias] = wrapper(settings_dict, alias)
    try:
        yield alias, settings_dict
    finally:
        connections[alias].close()
        del connections[alias]


def consistent(counts):
    return counts[ENTRIES] == 3 * counts[INCIDENTS]


@on_sqlite
def test_sqlite_backup_while_another_thread_writes_is_consistent(tmp_path):
    """Backups taken while a writer commits are each one moment of the database, and a
    restore of one gives back exactly its counts."""
    connection.ensure_connection()
    with scratch_sqlite(tmp_path, "live", schema_from=connection.connection) as (live, live_db):
        writer = Writer(live, live_db)
        writer.start()
        try:
            results = []
            for round_ in range(5):
                writer.wait_for(10 * (round_ + 1))
                results.append(backup(tmp_path / f"b{round_}", using=live))
        finally:
            writer.stop.set()
            writer.join()
        assert writer.error is None, writer.error
        assert writer.written > results[-1].counts[INCIDENTS] or writer.written >= 50
        assert all(consistent(r.counts) for r in results), [r.counts[ENTRIES] for r in results]
        assert results[0].counts[INCIDENTS] < results[-1].counts[INCIDENTS]
        with scratch_sqlite(tmp_path, "restored") as (empty, _):
            restored = restore(tmp_path / "b2", using=empty)
        assert restored.counts == results[2].counts


@on_postgres
def test_postgres_backup_while_another_thread_writes_is_consistent(tmp_path):
    """pg_dump reads the snapshot the printed counts come from; a restore gives them back."""
    writer = Writer("default")
    writer.start()
    try:
        writer.wait_for(5)
        result = backup(tmp_path / "during.dump")
        writer.wait_for(result.counts[INCIDENTS] + 3)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None, writer.error
    assert consistent(result.counts)
    assert current_counts()[INCIDENTS] > result.counts[INCIDENTS]
    restored = restore(tmp_path / "during.dump", force=True)
    assert restored.counts == result.counts
