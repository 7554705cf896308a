"""A consistent copy of the whole database while the app keeps serving, and putting one back.

- SQLite: the online backup API (`sqlite3.Connection.backup`) copies every page in one step
  under one read transaction. In WAL mode readers never block writers, so people keep saving
  while the copy is made, and the copy is the database as of one moment. The copy is switched to
  a plain rollback journal so it is one self-contained file, then checked with
  `PRAGMA integrity_check` and counted.
- PostgreSQL: `pg_dump --format=custom` reading a snapshot this module exports from a
  REPEATABLE READ transaction, so the row counts printed are exactly those of the dump. The
  dump is checked with `pg_restore --list`.

Restore refuses a database that already holds people's data unless told to overwrite it.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

SQLITE_HEADER = b"SQLite format 3\x00"
PG_HEADER = b"PGDMP"
# Where Debian and Ubuntu put the PostgreSQL client tools of each major version.
TOOL_DIRS = "/usr/lib/postgresql/*/bin"
# The tables that say "someone's data is here" (a freshly migrated database has none).
DATA_MODELS = [
    ("incidents", "Incident"),
    ("auth", "User"),
    ("incidents", "Team"),
    ("incidents", "Service"),
    ("incidents", "Tag"),
    ("lessons", "Lesson"),
]
# The counts every backup and restore prints; -v 2 prints every table.
HEADLINE = [
    ("incidents", "Incident", "incidents"),
    ("incidents", "TimelineEntry", "timeline entries"),
    ("incidents", "ContributingFactor", "contributing factors"),
    ("incidents", "ActionItem", "action items"),
    ("lessons", "Lesson", "lessons"),
    ("incidents", "Team", "teams"),
    ("auth", "User", "users"),
]


class BackupError(Exception):
    """A backup or restore that could not be made; the message says what to do."""


@dataclass
class Result:
    path: Path
    engine: str
    size: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    check: str = ""
    warnings: list[str] = field(default_factory=list)

    def headline(self) -> str:
        parts = []
        for app_label, model_name, label in HEADLINE:
            table = _table(app_label, model_name)
            if table in self.counts:
                parts.append(f"{self.counts[table]:,} {label}")
        return " · ".join(parts)


def human_size(size: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _table(app_label: str, model_name: str) -> str | None:
    try:
        return apps.get_model(app_label, model_name)._meta.db_table
    except LookupError:
        return None


def model_tables() -> list[str]:
    """Every table Django manages here, many-to-many tables included, sorted."""
    tables = set()
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            tables.add(model._meta.db_table)
    return sorted(tables)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _count_tables(cursor, existing: set[str]) -> dict[str, int]:
    counts = {}
    for table in model_tables():
        if table in existing:
            cursor.execute(f"SELECT COUNT(*) FROM {_quote(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


# --- Backup -----------------------------------------------------------------------------------


def backup(destination: str | os.PathLike, *, using: str = "default") -> Result:
    """Copies the whole database to `destination` and verifies the copy.

    The copy is written next to the destination and renamed into place only once verified, so
    a failed backup never leaves a broken file under the name a restore would use.
    """
    connection = connections[using]
    destination = Path(destination).resolve()
    if destination.is_dir():
        raise BackupError(f"{destination} is a directory; give a file name.")
    if not destination.parent.is_dir():
        raise BackupError(f"The directory {destination.parent} does not exist.")
    partial = destination.with_name(f".{destination.name}.partial")
    started = time.perf_counter()
    try:
        if connection.vendor == "sqlite":
            result = _sqlite_backup(connection.settings_dict, partial, destination)
        elif connection.vendor == "postgresql":
            result = _pg_backup(connection, partial, destination)
        else:
            raise BackupError(f"Backups of {connection.vendor} databases are not supported.")
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    result.seconds = time.perf_counter() - started
    result.size = destination.stat().st_size
    return result


def _sqlite_source(settings_dict) -> tuple[str, bool]:
    name = str(settings_dict["NAME"])
    return name, name.startswith("file:")


def _sqlite_backup(settings_dict, partial: Path, destination: Path) -> Result:
    name, is_uri = _sqlite_source(settings_dict)
    if not is_uri and Path(name).resolve() == destination:
        raise BackupError(f"{destination} is the live database; back up to another file.")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(name, uri=is_uri, timeout=20)
    try:
        source.execute("PRAGMA busy_timeout = 20000")
        target = sqlite3.connect(partial)
        try:
            # pages=-1: every page in one step, so the copy is one read snapshot of the source.
            source.backup(target, pages=-1)
            # A backup is one self-contained file: no -wal or -shm beside it.
            target.execute("PRAGMA journal_mode = DELETE").fetchone()
            check = _sqlite_integrity(target)
            counts = _sqlite_counts(target)
        finally:
            target.close()
    finally:
        source.close()
    return Result(path=destination, engine="SQLite", counts=counts, check=check)


def _sqlite_integrity(db: sqlite3.Connection) -> str:
    rows = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
    if rows != ["ok"]:
        raise BackupError("PRAGMA integrity_check failed: " + "; ".join(rows[:5]))
    return "PRAGMA integrity_check: ok"


def _sqlite_counts(db: sqlite3.Connection) -> dict[str, int]:
    existing = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return _count_tables(db.cursor(), existing)


def find_tool(name: str) -> str:
    """The newest `name` (pg_dump, pg_restore) on the PATH or in /usr/lib/postgresql/*/bin."""
    candidates = []
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    candidates += sorted(
        glob.glob(os.path.join(TOOL_DIRS, name)),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p)] or [0],
        reverse=True,
    )
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    raise BackupError(
        f"{name} was not found on the PATH or in {TOOL_DIRS}. Install the PostgreSQL client "
        f"tools of your server's version (Debian/Ubuntu: apt-get install postgresql-client) "
        f"and run this again."
    )


def _tool_major(tool: str) -> int:
    output = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"(\d+)(?:\.\d+)?", output.stdout)
    return int(found.group(1)) if found else 0


def _pg_env(settings_dict) -> dict[str, str]:
    env = dict(os.environ)
    # The password travels in the environment, never on a command line others can read.
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    options = settings_dict.get("OPTIONS") or {}
    for option, variable in (
        ("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"), ("sslkey", "PGSSLKEY"), ("service", "PGSERVICE"),
        ("passfile", "PGPASSFILE"),
    ):  # fmt: skip
        if options.get(option):
            env[variable] = str(options[option])
    return env


def _pg_args(settings_dict) -> list[str]:
    args = ["--no-password"]
    if settings_dict.get("HOST"):
        args += ["--host", str(settings_dict["HOST"])]
    if settings_dict.get("PORT"):
        args += ["--port", str(settings_dict["PORT"])]
    if settings_dict.get("USER"):
        args += ["--username", str(settings_dict["USER"])]
    return args


def _pg_tool(name: str, connection) -> str:
    tool = find_tool(name)
    server = connection.pg_version // 10000 if connection.pg_version else 0
    major = _tool_major(tool)
    if server and major and major < server:
        raise BackupError(
            f"{tool} is version {major} and cannot work with this PostgreSQL {server} server. "
            f"Install the version {server} client tools (postgresql-client-{server})."
        )
    return tool


def _run(args: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess:
    process = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        detail = (process.stderr or process.stdout).strip().splitlines()
        raise BackupError(f"{what} failed: " + " ".join(detail[-3:]))
    return process


def _pg_backup(connection, partial: Path, destination: Path) -> Result:
    connection.ensure_connection()
    pg_dump = _pg_tool("pg_dump", connection)
    pg_restore = _pg_tool("pg_restore", connection)
    settings_dict = connection.settings_dict
    env = _pg_env(settings_dict)
    # A connection of our own: Django's may be inside a transaction (a test, a request).
    raw = connection.get_new_connection(connection.get_connection_params())
    try:
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            existing = {row[0] for row in cursor.fetchall()}
            counts = _count_tables(cursor, existing)
            # pg_dump reads the very snapshot the counts came from; the transaction stays open
            # until it has finished.
            _run(
                [pg_dump, *_pg_args(settings_dict), "--format=custom", f"--snapshot={snapshot}",
                 f"--file={partial}", f"--dbname={settings_dict['NAME']}"],
                env, "pg_dump",
            )  # fmt: skip
            cursor.execute("COMMIT")
    finally:
        raw.close()
    listing = _run([pg_restore, "--list", str(partial)], env, "pg_restore --list").stdout
    data_entries = sum(1 for line in listing.splitlines() if " TABLE DATA " in line)
    missing = [t for t in counts if not re.search(rf" TABLE DATA \S+ {re.escape(t)} ", listing)]
    if missing:
        raise BackupError(f"The dump has no data for {', '.join(missing[:5])}; not kept.")
    check = f"pg_restore --list: ok, {data_entries} tables of data"
    return Result(path=destination, engine="PostgreSQL", counts=counts, check=check)


# --- Restore ----------------------------------------------------------------------------------


def current_counts(*, using: str = "default") -> dict[str, int]:
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        return _count_tables(cursor, existing)


def holds_data(*, using: str = "default") -> list[str]:
    """What makes the database non-empty, for the refusal message ("12 incidents, 30 users")."""
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    found = []
    with connection.cursor() as cursor:
        for app_label, model_name in DATA_MODELS:
            table = _table(app_label, model_name)
            if table and table in existing:
                cursor.execute(f"SELECT COUNT(*) FROM {_quote(table)}")
                count = cursor.fetchone()[0]
                if count:
                    found.append(f"{count:,} {model_name.lower()}{'s' if count != 1 else ''}")
    return found


def restore(source: str | os.PathLike, *, force: bool = False, using: str = "default") -> Result:
    """Loads a backup made by `backup` into the database."""
    connection = connections[using]
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source}: no such file.")
    with source.open("rb") as handle:
        header = handle.read(16)
    if header.startswith(PG_HEADER):
        kind = "postgresql"
    elif header == SQLITE_HEADER:
        kind = "sqlite"
    else:
        raise BackupError(
            f"{source} is not a Debrief backup (neither a SQLite database nor a pg_dump "
            f"custom-format file)."
        )
    if kind != connection.vendor:
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupError(
            f"{source} is a {names[kind]} backup but this database is "
            f"{names.get(connection.vendor, connection.vendor)}. To move between them, use "
            f"export_incidents and import_incidents."
        )
    if not force:
        data = holds_data(using=using)
        if data:
            raise BackupError(
                f"The database is not empty ({', '.join(data)}). Restoring replaces all of it; "
                f"run again with --force to overwrite, or point DATABASE_URL at an empty "
                f"database."
            )
    started = time.perf_counter()
    if kind == "sqlite":
        check = _sqlite_restore(connection, source)
    else:
        check = _pg_restore(connection, source)
    result = Result(path=source, engine=connection.vendor, check=check)
    result.seconds = time.perf_counter() - started
    result.size = source.stat().st_size
    result.counts = current_counts(using=using)
    result.warnings = _migration_warnings(connection)
    return result


def _sqlite_restore(connection, source: Path) -> str:
    backup_db = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        check = _sqlite_integrity(backup_db)
        tables = {r[0] for r in backup_db.execute("SELECT name FROM sqlite_master")}
        if "django_migrations" not in tables:
            raise BackupError(f"{source} is a SQLite database but not one of Debrief's.")
        name, is_uri = _sqlite_source(connection.settings_dict)
        live = sqlite3.connect(name, uri=is_uri, timeout=20)
        try:
            live.execute("PRAGMA busy_timeout = 20000")
            # Page by page into the live database under its write lock: other connections
            # wait (busy timeout) and then see the restored database, never a mix.
            backup_db.backup(live, pages=-1)
        finally:
            live.close()
    finally:
        backup_db.close()
    return check


def _pg_restore(connection, source: Path) -> str:
    connection.ensure_connection()
    pg_restore = _pg_tool("pg_restore", connection)
    settings_dict = connection.settings_dict
    env = _pg_env(settings_dict)
    _run([pg_restore, "--list", str(source)], env, "pg_restore --list")
    # Django's own connection must not hold a lock on a table pg_restore drops.
    if not connection.in_atomic_block:
        connection.close()
    _run(
        [pg_restore, *_pg_args(settings_dict), "--clean", "--if-exists", "--no-owner",
         "--no-privileges", "--single-transaction", "--exit-on-error",
         f"--dbname={settings_dict['NAME']}", str(source)],
        env, "pg_restore",
    )  # fmt: skip
    return "pg_restore: ok (one transaction)"


def _migration_warnings(connection) -> list[str]:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        unknown = set(executor.loader.applied_migrations) - set(executor.loader.graph.nodes)
    except Exception as error:  # a restored database we cannot read migrations from
        return [f"Could not compare migrations: {error}"]
    warnings = []
    if plan:
        warnings.append(
            f"The backup is from an older version of Debrief ({len(plan)} migrations to "
            f"apply): run `python manage.py migrate` now."
        )
    if unknown:
        warnings.append(
            f"The backup comes from a newer version of Debrief ({len(unknown)} migrations this "
            f"code does not know); upgrade Debrief before serving it."
        )
    return warnings
