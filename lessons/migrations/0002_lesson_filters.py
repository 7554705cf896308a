# Indexes for the lessons library's filters (kind; published).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lessons", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="lesson",
            index=models.Index(fields=["kind", "-created_at"], name="lesson_kind_created"),
        ),
        migrations.AddIndex(
            model_name="lesson",
            index=models.Index(
                fields=["is_published", "-created_at"], name="lesson_published_created"
            ),
        ),
    ]
