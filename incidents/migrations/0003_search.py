# Placeholder in the migration chain for the search index (owned by the search feature); operations are added by that feature.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_default_questions")]
    operations = []
