# The action-item dashboard's weekly escalation digests (owned by the action-items feature).
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0004_review"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="EscalationDigest",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("week", models.DateField(help_text="Monday of the week the digest covers.")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("recipient", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="escalation_digests", to=settings.AUTH_USER_MODEL)),
                ("team", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="digests", to="incidents.team")),
            ],
            options={
                "indexes": [models.Index(fields=["sent_at"], name="digest_unsent")],
                "constraints": [models.UniqueConstraint(fields=("team", "recipient", "week"), name="one_digest_per_team_lead_week")],
            },
        ),
    ]
