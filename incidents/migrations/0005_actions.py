# Placeholder in the migration chain for the action-item dashboard and reminders (owned by the action-items feature); operations are added by that feature.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("incidents", "0004_review")]
    operations = []
