"""The full-text search index: an FTS5 table on SQLite, a weighted tsvector with a GIN index on
PostgreSQL, each kept in step with incidents, timeline entries, factors and action items by
database triggers (bulk inserts and queryset updates send no signals). The SQL lives in
incidents/search_models.py, which also repairs the triggers after later migrations."""

from django.db import migrations


def install(apps, schema_editor):
    from incidents.search_models import install_search_index

    # Checks schema_editor.connection.vendor: SQLite and PostgreSQL only; others fall back to LIKE.
    install_search_index(schema_editor.connection, rebuild=True)


def uninstall(apps, schema_editor):
    from incidents.search_models import uninstall_search_index

    uninstall_search_index(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_default_questions")]
    operations = [migrations.RunPython(install, uninstall, elidable=False)]
