# Placeholder in the migration chain for the review comments, meetings, edit history (owned by the review feature); operations are added by that feature.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("incidents", "0003_search")]
    operations = []
