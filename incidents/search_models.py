"""The full-text search index over incidents, kept in step by database triggers.

There is no Django model here on purpose: the index is a database object of its own on each
backend, and it must follow every write — including `bulk_create` (the demo seeder, the
importer) and queryset `.update()` (the guided write-up's autosave), which send no signals.

- SQLite: an FTS5 table `incidents_search_fts` with one row per piece of text (the incident's
  own fields, each factor, action item and timeline entry; the rowid tells whose it is) and one
  column per part of the write-up, so ranking can weigh a title hit above a timeline hit.
- PostgreSQL: a table `incidents_search` with a weighted `tsvector` (GIN index) and the plain
  text it was built from (for `ts_headline` snippets), refreshed by statement-level triggers
  with transition tables, so a bulk insert of 1,000 timeline entries refreshes each touched
  incident once.

SQLite triggers only ever read the table they sit on: SQLite refuses to rename a table while any
trigger mentions a table that does not exist, and Django rebuilds a table (create, copy, drop,
rename) for most schema changes there. A rebuild drops the triggers of the rebuilt table, so
`ensure_search_index` runs after every `migrate` and puts back whatever went missing, then
rebuilds the index from the data.

`incidents.search` holds the queries; this module only owns the schema.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.signals import post_migrate

# models.py star-imports this module; nothing here is a model.
__all__: list[str] = []

FTS_TABLE = "incidents_search_fts"
PG_TABLE = "incidents_search"

# Index columns: the incident's own text first, then its children's.
COLUMNS = ("title", "summary", "impact", "narrative", "lessons", "factors", "actions", "timeline")
# How much a hit counts in each column (SQLite bm25 weights) ...
WEIGHTS = {"title": 10.0, "summary": 4.0, "impact": 3.0, "narrative": 2.0, "lessons": 3.0,
           "factors": 2.0, "actions": 1.5, "timeline": 1.0}  # fmt: skip
# ... and PostgreSQL's four weight classes (ts_rank's default weights 1.0, 0.4, 0.2, 0.1).
PG_WEIGHT_CLASSES = {"A": ("title",), "B": ("summary", "impact", "lessons"),
                     "C": ("narrative", "factors"), "D": ("actions", "timeline")}  # fmt: skip
# What readers call each column, for labelling excerpts.
LABELS = {"title": "Title", "summary": "Summary", "impact": "Impact", "narrative": "What happened",
          "lessons": "Lessons", "factors": "Contributing factor", "actions": "Action item",
          "timeline": "Timeline"}  # fmt: skip

# Text of the incident row that each incident-level column is made of.
INCIDENT_PARTS = {
    "title": ("title",),
    "summary": ("summary",),
    "impact": ("impact",),
    "narrative": ("narrative", "went_well", "lucky"),
    "lessons": ("lessons",),
}
INCIDENT_TEXT_FIELDS = tuple(name for parts in INCIDENT_PARTS.values() for name in parts)

# Child tables: index column -> (table, the text fields of one row).
CHILDREN = {
    "factors": ("incidents_contributingfactor", ("description",)),
    "actions": ("incidents_actionitem", ("title", "description")),
    "timeline": ("incidents_timelineentry", ("text",)),
}

# PostgreSQL's tsvector holds at most 1 MB; no write may fail because an author wrote a lot.
PG_MAX_CHARS = 50_000


# --- SQLite -------------------------------------------------------------------------------
#
# One FTS5 row per piece of text: the incident's own row (title, summary, narrative columns) and
# one row per factor, action item and timeline entry (its own column). Each trigger then only
# tokenizes the row it touches, so bulk inserts stay linear (one document per incident would be
# re-tokenized on every child insert: 3.5x slower seeding at 10,000 incidents). The rowid says
# whose text it is, so queries group rows by incident without reading the stored content:
#     rowid = incident_id << 32 | kind << 28 | (source id & 0x0FFFFFFF)

KIND_BITS = {"incident": 0, "factors": 1, "actions": 2, "timeline": 3}
SOURCE_MASK = 0x0FFFFFFF


def sqlite_rowid(incident_id: str, column: str, source_id: str) -> str:
    """SQL for the FTS rowid of one piece of text (arguments are SQL expressions)."""
    return f"(({incident_id} << 32) | {KIND_BITS[column] << 28} | ({source_id} & {SOURCE_MASK}))"


def _sqlite_join(prefix: str, fields) -> str:
    return " || char(10) || ".join(f"{prefix}.{name}" for name in fields)


def _sqlite_statements() -> list[str]:
    incident_columns = ", ".join(INCIDENT_PARTS)
    new_values = ", ".join(_sqlite_join("NEW", parts) for parts in INCIDENT_PARTS.values())
    changed = " OR ".join(f"OLD.{name} IS NOT NEW.{name}" for name in INCIDENT_TEXT_FIELDS)
    statements = [
        f"""CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(
            {", ".join(COLUMNS)}, tokenize = 'porter unicode61 remove_diacritics 2')""",
        f"""CREATE TRIGGER IF NOT EXISTS incidents_search_incident_ai
            AFTER INSERT ON incidents_incident BEGIN
              DELETE FROM {FTS_TABLE} WHERE rowid = NEW.id << 32;
              INSERT INTO {FTS_TABLE} (rowid, {incident_columns}) VALUES (NEW.id << 32, {new_values});
            END""",
        f"""CREATE TRIGGER IF NOT EXISTS incidents_search_incident_au
            AFTER UPDATE ON incidents_incident WHEN {changed} BEGIN
              DELETE FROM {FTS_TABLE} WHERE rowid = OLD.id << 32;
              INSERT INTO {FTS_TABLE} (rowid, {incident_columns}) VALUES (NEW.id << 32, {new_values});
            END""",
        # Everything of the incident, children included, whatever is left.
        f"""CREATE TRIGGER IF NOT EXISTS incidents_search_incident_ad
            AFTER DELETE ON incidents_incident BEGIN
              DELETE FROM {FTS_TABLE}
              WHERE rowid BETWEEN OLD.id << 32 AND (OLD.id << 32) | 0xFFFFFFFF;
            END""",
    ]
    for column, (table, fields) in CHILDREN.items():
        child_changed = " OR ".join(
            ["OLD.incident_id IS NOT NEW.incident_id", "OLD.id IS NOT NEW.id"]
            + [f"OLD.{name} IS NOT NEW.{name}" for name in fields]
        )
        new_rowid = sqlite_rowid("NEW.incident_id", column, "NEW.id")
        old_rowid = sqlite_rowid("OLD.incident_id", column, "OLD.id")
        insert = (
            f"INSERT INTO {FTS_TABLE} (rowid, {column}) "
            f"VALUES ({new_rowid}, {_sqlite_join('NEW', fields)});"
        )
        statements += [
            f"""CREATE TRIGGER IF NOT EXISTS incidents_search_{column}_ai
                AFTER INSERT ON {table} BEGIN
                  DELETE FROM {FTS_TABLE} WHERE rowid = {new_rowid};
                  {insert}
                END""",
            f"""CREATE TRIGGER IF NOT EXISTS incidents_search_{column}_au
                AFTER UPDATE ON {table} WHEN {child_changed} BEGIN
                  DELETE FROM {FTS_TABLE} WHERE rowid = {old_rowid};
                  {insert}
                END""",
            f"""CREATE TRIGGER IF NOT EXISTS incidents_search_{column}_ad
                AFTER DELETE ON {table} BEGIN
                  DELETE FROM {FTS_TABLE} WHERE rowid = {old_rowid};
                END""",
        ]
    return statements


def _sqlite_rebuild_sql() -> list[str]:
    incident_values = ", ".join(_sqlite_join("i", parts) for parts in INCIDENT_PARTS.values())
    statements = [
        f"DELETE FROM {FTS_TABLE}",
        f"""INSERT INTO {FTS_TABLE} (rowid, {", ".join(INCIDENT_PARTS)})
            SELECT i.id << 32, {incident_values} FROM incidents_incident i""",
    ]
    for column, (table, fields) in CHILDREN.items():
        statements.append(
            f"""INSERT INTO {FTS_TABLE} (rowid, {column})
                SELECT {sqlite_rowid("c.incident_id", column, "c.id")}, {_sqlite_join("c", fields)}
                FROM {table} c"""
        )
    return statements


SQLITE_TRIGGERS = tuple(
    [f"incidents_search_incident_{op}" for op in ("ai", "au", "ad")]
    + [f"incidents_search_{column}_{op}" for column in CHILDREN for op in ("ai", "au", "ad")]
)


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_join(prefix: str, fields) -> str:
    return "concat_ws(E'\\n', " + ", ".join(f"{prefix}.{name}" for name in fields) + ")"


def _pg_child_text(column: str) -> str:
    table, fields = CHILDREN[column]
    order = {"timeline": "c.at, c.position, c.id", "factors": "c.position, c.id"}.get(
        column, "c.id"
    )
    return (
        f"coalesce((SELECT string_agg({_pg_join('c', fields)}, E'\\n' ORDER BY {order}) "
        f"FROM {table} c WHERE c.incident_id = i.id), '')"
    )


def _pg_clean(sql: str) -> str:
    # PostgreSQL's parser drops anything that looks like an HTML tag ("<service-name>"), which
    # SQLite indexes; angle brackets become spaces so both find the same words. Length is
    # capped so no write can fail on tsvector's 1 MB limit.
    return f"left(translate({sql}, '<>', '  '), {PG_MAX_CHARS})"


def _pg_refresh_function() -> str:
    parts = ",\n".join(
        [f"{_pg_clean(_pg_join('i', fields))} AS {col}" for col, fields in
         INCIDENT_PARTS.items()]
        + [f"{_pg_clean(_pg_child_text(col))} AS {col}" for col in CHILDREN]
    )  # fmt: skip
    document = " || ".join(
        f"setweight(to_tsvector('english', concat_ws(E'\\n', {', '.join(f'd.{c}' for c in cols)})),"
        f" '{weight}')"
        for weight, cols in PG_WEIGHT_CLASSES.items()
    )
    updates = ", ".join(f"{col} = EXCLUDED.{col}" for col in (*COLUMNS, "document"))
    return f"""
    CREATE OR REPLACE FUNCTION incidents_search_refresh(ids bigint[]) RETURNS void
    LANGUAGE sql AS $$
      DELETE FROM {PG_TABLE} s WHERE s.incident_id = ANY(ids)
        AND NOT EXISTS (SELECT 1 FROM incidents_incident i WHERE i.id = s.incident_id);
      INSERT INTO {PG_TABLE} (incident_id, {", ".join(COLUMNS)}, document)
      SELECT d.id, {", ".join(f"d.{col}" for col in COLUMNS)}, {document}
      FROM (SELECT i.id, {parts} FROM incidents_incident i WHERE i.id = ANY(ids)) d
      ON CONFLICT (incident_id) DO UPDATE SET {updates};
    $$"""


def _pg_statements() -> list[str]:
    changed = " OR ".join(f"n.{name} IS DISTINCT FROM o.{name}" for name in INCIDENT_TEXT_FIELDS)
    statements = [
        f"""CREATE TABLE IF NOT EXISTS {PG_TABLE} (
            incident_id bigint PRIMARY KEY,
            {", ".join(f"{col} text NOT NULL DEFAULT ''" for col in COLUMNS)},
            document tsvector NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS incidents_search_document ON {PG_TABLE} USING gin (document)",
        _pg_refresh_function(),
        f"""CREATE OR REPLACE FUNCTION incidents_search_incident_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            PERFORM incidents_search_refresh(ARRAY(SELECT id FROM new_rows));
          ELSIF TG_OP = 'UPDATE' THEN
            PERFORM incidents_search_refresh(ARRAY(
              SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE {changed}));
          ELSE
            DELETE FROM {PG_TABLE} WHERE incident_id IN (SELECT id FROM old_rows);
          END IF;
          RETURN NULL;
        END $$""",
    ]
    for op, referencing in (
        ("insert", "NEW TABLE AS new_rows"),
        ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("delete", "OLD TABLE AS old_rows"),
    ):
        statements += [
            f"DROP TRIGGER IF EXISTS incidents_search_incident_{op} ON incidents_incident",
            f"""CREATE TRIGGER incidents_search_incident_{op} AFTER {op.upper()}
                ON incidents_incident REFERENCING {referencing}
                FOR EACH STATEMENT EXECUTE FUNCTION incidents_search_incident_changed()""",
        ]
    for column, (table, fields) in CHILDREN.items():
        child_changed = " OR ".join(
            ["n.incident_id IS DISTINCT FROM o.incident_id"]
            + [f"n.{name} IS DISTINCT FROM o.{name}" for name in fields]
        )
        statements.append(
            f"""CREATE OR REPLACE FUNCTION incidents_search_{column}_changed() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'INSERT' THEN
                PERFORM incidents_search_refresh(ARRAY(SELECT DISTINCT incident_id FROM new_rows));
              ELSIF TG_OP = 'UPDATE' THEN
                PERFORM incidents_search_refresh(ARRAY(
                  SELECT n.incident_id FROM new_rows n JOIN old_rows o ON o.id = n.id
                  WHERE {child_changed}
                  UNION
                  SELECT o.incident_id FROM new_rows n JOIN old_rows o ON o.id = n.id
                  WHERE {child_changed}));
              ELSE
                PERFORM incidents_search_refresh(ARRAY(SELECT DISTINCT incident_id FROM old_rows));
              END IF;
              RETURN NULL;
            END $$"""
        )
        for op, referencing in (
            ("insert", "NEW TABLE AS new_rows"),
            ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("delete", "OLD TABLE AS old_rows"),
        ):
            statements += [
                f"DROP TRIGGER IF EXISTS incidents_search_{column}_{op} ON {table}",
                f"""CREATE TRIGGER incidents_search_{column}_{op} AFTER {op.upper()} ON {table}
                    REFERENCING {referencing}
                    FOR EACH STATEMENT EXECUTE FUNCTION incidents_search_{column}_changed()""",
            ]
    return statements


PG_TRIGGERS = tuple(
    f"incidents_search_{name}_{op}"
    for name in ("incident", *CHILDREN)
    for op in ("insert", "update", "delete")
)


def _pg_rebuild_sql() -> list[str]:
    return [
        f"TRUNCATE {PG_TABLE}",
        "SELECT incidents_search_refresh(ARRAY(SELECT id FROM incidents_incident))",
    ]


# --- Installing, checking, rebuilding -------------------------------------------------------


def install_search_index(connection, *, rebuild: bool = True) -> None:
    """Create the index, its triggers and functions where missing; then fill it from the data.

    Idempotent. Called by migration 0003 and after every `migrate` (see module docstring).
    Databases other than SQLite and PostgreSQL get no index; search falls back to LIKE.
    """
    if connection.vendor == "sqlite":
        statements = _sqlite_statements() + (_sqlite_rebuild_sql() if rebuild else [])
    elif connection.vendor == "postgresql":
        statements = _pg_statements() + (_pg_rebuild_sql() if rebuild else [])
    else:
        return
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def uninstall_search_index(connection) -> None:
    if connection.vendor == "sqlite":
        statements = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
        statements.append(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    elif connection.vendor == "postgresql":
        tables = {"incident": "incidents_incident"} | {
            column: table for column, (table, _) in CHILDREN.items()
        }
        statements = [
            f"DROP TRIGGER IF EXISTS incidents_search_{name}_{op} ON {tables[name]}"
            for name in ("incident", *CHILDREN)
            for op in ("insert", "update", "delete")
        ]
        statements += [
            f"DROP FUNCTION IF EXISTS incidents_search_{name}_changed()"
            for name in ("incident", *CHILDREN)
        ]
        statements += [
            "DROP FUNCTION IF EXISTS incidents_search_refresh(bigint[])",
            f"DROP TABLE IF EXISTS {PG_TABLE}",
        ]
    else:
        return
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def missing_triggers(connection) -> set[str]:
    """Names of the index's triggers that the database does not have (empty when all is well)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            expected = set(SQLITE_TRIGGERS)
        elif connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            expected = set(PG_TRIGGERS)
        else:
            return set()
        return expected - {row[0] for row in cursor.fetchall()}


def ensure_search_index(connection) -> bool:
    """Put back the index and its triggers if a schema change dropped them, and refill it.

    Returns True when it had to repair anything.
    """
    from django.db.migrations.recorder import MigrationRecorder

    if connection.vendor not in ("sqlite", "postgresql"):
        return False
    applied = MigrationRecorder(connection).applied_migrations()
    if ("incidents", "0003_search") not in applied:
        return False  # not migrated this far (or migrated back): nothing of ours should exist
    if not missing_triggers(connection):
        return False
    install_search_index(connection, rebuild=True)
    return True


def _after_migrate(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    if getattr(sender, "label", None) == "incidents":
        ensure_search_index(connections[using])


# Infrastructure, not domain logic: SQLite loses a table's triggers whenever a migration
# rebuilds that table, and this is the one moment after which that can have happened.
post_migrate.connect(_after_migrate, dispatch_uid="incidents_search_index_after_migrate")
