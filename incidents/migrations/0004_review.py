# Review and publish (issue 5): review comments, the review meeting, review notices, the trash
# behind undo, the role permissions and groups, and the edit history tables of
# django-simple-history.

import django.core.serializers.json
import django.core.validators
import django.db.models.deletion
import django.utils.timezone
import incidents.models
import incidents.review_models
import simple_history.models
import uuid
from django.conf import settings
from django.db import migrations, models


# The review roles as they were when this migration was written (a frozen copy of
# `incidents.review.ROLE_GRANTS`; later changes go in new migrations or `ensure_roles`).
ROLE_GRANTS = {
    "Authors": {
        "incident": ["add_incident", "change_incident", "view_incident"],
        "timelineentry": ["add_timelineentry", "change_timelineentry", "delete_timelineentry", "view_timelineentry"],
        "contributingfactor": ["add_contributingfactor", "change_contributingfactor", "delete_contributingfactor", "view_contributingfactor"],
        "actionitem": ["add_actionitem", "change_actionitem", "delete_actionitem", "view_actionitem"],
        "answer": ["add_answer", "change_answer", "view_answer"],
        "reviewcomment": ["add_reviewcomment", "view_reviewcomment"],
        "reviewmeeting": ["add_reviewmeeting", "change_reviewmeeting", "view_reviewmeeting"],
    },
    "Reviewers": {
        "incident": ["view_incident"],
        "reviewcomment": ["add_reviewcomment", "change_reviewcomment", "view_reviewcomment"],
        "reviewmeeting": ["add_reviewmeeting", "change_reviewmeeting", "view_reviewmeeting"],
        "incidentroles": ["review_incident"],
    },
    "Staff": {
        "incident": ["add_incident", "change_incident", "delete_incident", "view_incident"],
        "timelineentry": ["add_timelineentry", "change_timelineentry", "delete_timelineentry", "view_timelineentry"],
        "contributingfactor": ["add_contributingfactor", "change_contributingfactor", "delete_contributingfactor", "view_contributingfactor"],
        "actionitem": ["add_actionitem", "change_actionitem", "delete_actionitem", "view_actionitem"],
        "answer": ["add_answer", "change_answer", "delete_answer", "view_answer"],
        "reviewcomment": ["add_reviewcomment", "change_reviewcomment", "delete_reviewcomment", "view_reviewcomment"],
        "reviewmeeting": ["add_reviewmeeting", "change_reviewmeeting", "delete_reviewmeeting", "view_reviewmeeting"],
        "trashentry": ["view_trashentry"],
        "incidentroles": ["review_incident", "manage_any_incident", "restore_any_trash"],
    },
}
PERMISSION_NAMES = {
    "review_incident": "Can be requested as a reviewer of write-ups",
    "manage_any_incident": "Can act as author and reviewer on every write-up",
    "restore_any_trash": "Can restore anything from the trash",
}


def create_roles(apps, schema_editor):
    """Groups with their permissions. Permissions are made here when missing, because Django
    only creates them after all migrations ran (post_migrate)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group_name, grants in ROLE_GRANTS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for model_name, codenames in grants.items():
            content_type, _ = ContentType.objects.get_or_create(
                app_label="incidents", model=model_name
            )
            verbose_name = apps.get_model("incidents", model_name)._meta.verbose_name
            for codename in codenames:
                action = codename.partition("_")[0]
                name = PERMISSION_NAMES.get(codename) or f"Can {action} {verbose_name}"
                permission, _ = Permission.objects.get_or_create(
                    content_type=content_type, codename=codename, defaults={"name": name}
                )
                group.permissions.add(permission)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_GRANTS)).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0003_search'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='IncidentRoles',
            fields=[
            ],
            options={
                'verbose_name': 'review role',
                'permissions': [('review_incident', 'Can be requested as a reviewer of write-ups'), ('manage_any_incident', 'Can act as author and reviewer on every write-up'), ('restore_any_trash', 'Can restore anything from the trash')],
                'proxy': True,
                'default_permissions': (),
                'indexes': [],
                'constraints': [],
            },
            bases=('incidents.incident',),
        ),
        migrations.CreateModel(
            name='HistoricalActionItem',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('title', models.CharField(max_length=200)),
                ('description', models.TextField(blank=True)),
                ('kind', models.CharField(choices=[('prevent', 'Prevent'), ('detect', 'Detect'), ('mitigate', 'Mitigate'), ('process', 'Process'), ('learn', 'Learn')], default='prevent', max_length=10)),
                ('due', models.DateField(blank=True, null=True, verbose_name='due date')),
                ('priority', models.CharField(choices=[('low', 'Low'), ('medium', 'Medium'), ('high', 'High')], default='medium', max_length=10)),
                ('status', models.CharField(choices=[('open', 'Open'), ('in_progress', 'In progress'), ('done', 'Done'), ('wont_do', "Won't do")], default='open', max_length=12)),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('tracker_url', models.URLField(blank=True, max_length=500, verbose_name='tracker link')),
                ('evidence', models.TextField(blank=True, help_text='What changed (a link) and, for prevent/detect, how it was verified.')),
                ('wont_do_reason', models.TextField(blank=True)),
                ('verified_effective_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('owner', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.team')),
                ('verified_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'historical action item',
                'verbose_name_plural': 'historical action items',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalActionItem_addresses',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('actionitem', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.actionitem')),
                ('contributingfactor', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.contributingfactor')),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalactionitem')),
            ],
            options={
                'verbose_name': 'HistoricalActionItem_addresses',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalAnswer',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('text', models.TextField(blank=True)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('question', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.guidedquestion')),
            ],
            options={
                'verbose_name': 'historical answer',
                'verbose_name_plural': 'historical answers',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalContributingFactor',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('category', models.CharField(choices=[('change', 'Change / deploy'), ('configuration', 'Configuration'), ('capacity', 'Capacity'), ('dependency', 'Dependency'), ('monitoring', 'Monitoring & alerting gap'), ('tooling', 'Tooling'), ('documentation', 'Documentation / runbook'), ('process', 'Process'), ('communication', 'Communication'), ('workload', 'Workload & fatigue'), ('design', 'Design'), ('testing', 'Testing gap'), ('unknown', 'Unknown')], max_length=20)),
                ('description', models.TextField()),
                ('accepted_risk', models.BooleanField(default=False, help_text='We choose not to act on this factor, and say why.')),
                ('accepted_risk_reason', models.TextField(blank=True)),
                ('position', models.PositiveIntegerField(default=0)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
            ],
            options={
                'verbose_name': 'historical contributing factor',
                'verbose_name_plural': 'historical contributing factors',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalContributingFactor_evidence',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('contributingfactor', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.contributingfactor')),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalcontributingfactor')),
                ('timelineentry', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.timelineentry')),
            ],
            options={
                'verbose_name': 'HistoricalContributingFactor_evidence',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalIncident',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('slug', models.SlugField(max_length=100)),
                ('title', models.CharField(max_length=200)),
                ('severity', models.CharField(choices=[('SEV1', 'SEV1 — critical'), ('SEV2', 'SEV2 — major'), ('SEV3', 'SEV3 — minor'), ('SEV4', 'SEV4 — low')], default='SEV3', max_length=4)),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('in_review', 'In review'), ('changes_requested', 'Changes requested'), ('published', 'Published')], default='draft', max_length=20)),
                ('summary', models.TextField(blank=True, help_text='Two or three sentences: what happened.')),
                ('impact', models.TextField(blank=True, help_text='Who and what was affected, for how long, and how badly.')),
                ('customer_visible', models.BooleanField(blank=True, null=True)),
                ('data_lost', models.BooleanField(blank=True, null=True)),
                ('narrative', models.TextField(blank=True, help_text='The story, as it looked from the inside.')),
                ('went_well', models.TextField(blank=True, verbose_name='what went well')),
                ('lucky', models.TextField(blank=True, verbose_name='where we got lucky')),
                ('lessons', models.TextField(blank=True)),
                ('started_at', models.DateTimeField(blank=True, null=True, verbose_name='started')),
                ('detected_at', models.DateTimeField(blank=True, null=True, verbose_name='detected')),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True, verbose_name='acknowledged')),
                ('mitigated_at', models.DateTimeField(blank=True, null=True, verbose_name='mitigated')),
                ('resolved_at', models.DateTimeField(blank=True, null=True, verbose_name='resolved')),
                ('visibility', models.CharField(choices=[('everyone', 'Everyone'), ('teams', 'Only chosen teams'), ('people', 'Only chosen people')], default='everyone', max_length=10)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('published_at', models.DateTimeField(blank=True, null=True)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('created_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'historical incident',
                'verbose_name_plural': 'historical incidents',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalIncident_authors',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalincident')),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('user', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'HistoricalIncident_authors',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalIncident_reviewers',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalincident')),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('user', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'HistoricalIncident_reviewers',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalIncident_services',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalincident')),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('service', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.service')),
            ],
            options={
                'verbose_name': 'HistoricalIncident_services',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalIncident_tags',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalincident')),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('tag', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.tag')),
            ],
            options={
                'verbose_name': 'HistoricalIncident_tags',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalIncident_teams',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalincident')),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('team', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.team')),
            ],
            options={
                'verbose_name': 'HistoricalIncident_teams',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalIncident_visible_teams',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalincident')),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('team', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.team')),
            ],
            options={
                'verbose_name': 'HistoricalIncident_visible_teams',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalIncident_visible_users',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalincident')),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('user', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'HistoricalIncident_visible_users',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalReviewMeeting',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('starts_at', models.DateTimeField(verbose_name='starts')),
                ('duration', models.PositiveSmallIntegerField(default=60, validators=[django.core.validators.MinValueValidator(15), django.core.validators.MaxValueValidator(480)], verbose_name='length (minutes)')),
                ('location', models.CharField(blank=True, help_text='A room, or the link of the video call.', max_length=300)),
                ('agenda', models.TextField(blank=True)),
                ('uid', models.CharField(db_index=True, default=incidents.review_models.new_meeting_uid, editable=False, max_length=100)),
                ('sequence', models.PositiveIntegerField(default=0, editable=False)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('created_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('facilitator', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
            ],
            options={
                'verbose_name': 'historical review meeting',
                'verbose_name_plural': 'historical review meetings',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalTimelineEntry',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('at', models.DateTimeField()),
                ('kind', models.CharField(choices=[('detection', 'Detection'), ('alert', 'Alert'), ('action', 'Action'), ('decision', 'Decision'), ('status_update', 'Status update'), ('escalation', 'Escalation'), ('communication', 'Communication'), ('mitigation', 'Mitigation'), ('resolution', 'Resolution'), ('other', 'Other')], default='action', max_length=20)),
                ('text', models.TextField()),
                ('position', models.PositiveIntegerField(default=0)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
            ],
            options={
                'verbose_name': 'historical timeline entry',
                'verbose_name_plural': 'historical timeline entries',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='ReviewComment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('anchor', models.CharField(choices=[('incident', 'The whole write-up'), ('summary', 'Summary'), ('impact', 'Impact'), ('narrative', 'What happened'), ('timeline_entry', 'A timeline entry'), ('factor', 'A contributing factor'), ('action_item', 'An action item'), ('went_well', 'What went well'), ('lucky', 'Where we got lucky'), ('lessons', 'Lessons')], default='incident', max_length=20)),
                ('body', models.TextField(max_length=10000)),
                ('body_html', models.TextField(blank=True, editable=False)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('action_item', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='review_comments', to='incidents.actionitem')),
                ('author', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('factor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='review_comments', to='incidents.contributingfactor')),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='review_comments', to='incidents.incident')),
                ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='replies', to='incidents.reviewcomment')),
                ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('timeline_entry', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='review_comments', to='incidents.timelineentry')),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
            bases=(incidents.models.MarkdownFieldsMixin, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalReviewComment',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('anchor', models.CharField(choices=[('incident', 'The whole write-up'), ('summary', 'Summary'), ('impact', 'Impact'), ('narrative', 'What happened'), ('timeline_entry', 'A timeline entry'), ('factor', 'A contributing factor'), ('action_item', 'An action item'), ('went_well', 'What went well'), ('lucky', 'Where we got lucky'), ('lessons', 'Lessons')], default='incident', max_length=20)),
                ('body', models.TextField(max_length=10000)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('action_item', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.actionitem')),
                ('author', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('factor', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.contributingfactor')),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.incident')),
                ('resolved_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('timeline_entry', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.timelineentry')),
                ('parent', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.reviewcomment')),
            ],
            options={
                'verbose_name': 'historical review comment',
                'verbose_name_plural': 'historical review comments',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='ReviewMeeting',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('starts_at', models.DateTimeField(verbose_name='starts')),
                ('duration', models.PositiveSmallIntegerField(default=60, validators=[django.core.validators.MinValueValidator(15), django.core.validators.MaxValueValidator(480)], verbose_name='length (minutes)')),
                ('location', models.CharField(blank=True, help_text='A room, or the link of the video call.', max_length=300)),
                ('agenda', models.TextField(blank=True)),
                ('agenda_html', models.TextField(blank=True, editable=False)),
                ('uid', models.CharField(default=incidents.review_models.new_meeting_uid, editable=False, max_length=100, unique=True)),
                ('sequence', models.PositiveIntegerField(default=0, editable=False)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('attendees', models.ManyToManyField(blank=True, related_name='review_meetings', to=settings.AUTH_USER_MODEL)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('facilitator', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='review_meeting', to='incidents.incident')),
            ],
            options={
                'ordering': ['starts_at'],
            },
            bases=(incidents.models.MarkdownFieldsMixin, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalReviewMeeting_attendees',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='incidents.historicalreviewmeeting')),
                ('user', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('reviewmeeting', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='incidents.reviewmeeting')),
            ],
            options={
                'verbose_name': 'HistoricalReviewMeeting_attendees',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='ReviewNotice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('review_requested', 'Review requested'), ('changes_requested', 'Changes requested'), ('published', 'Approved and published'), ('meeting', 'Review meeting')], max_length=20)),
                ('key', models.CharField(max_length=200, unique=True)),
                ('subject', models.CharField(max_length=300)),
                ('body', models.TextField()),
                ('ics', models.TextField(blank=True, help_text='A calendar invitation to attach, if any.')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='incidents.incident')),
                ('recipient', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='TrashEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('token', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('model_label', models.CharField(max_length=100)),
                ('object_pk', models.CharField(max_length=64)),
                ('label', models.CharField(max_length=300)),
                ('incident_pk', models.BigIntegerField(blank=True, null=True)),
                ('incident_title', models.CharField(blank=True, max_length=200)),
                ('incident_slug', models.CharField(blank=True, max_length=100)),
                ('payload', models.JSONField(encoder=django.core.serializers.json.DjangoJSONEncoder)),
                ('next_url', models.CharField(blank=True, max_length=500)),
                ('deleted_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('restored_at', models.DateTimeField(blank=True, null=True)),
                ('deleted_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('restored_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('restorers', models.ManyToManyField(blank=True, help_text='Who may restore it besides staff: the authors of its write-up when it was deleted, and the person who deleted it.', related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name_plural': 'trash entries',
                'ordering': ['-deleted_at', '-id'],
            },
        ),
        migrations.AddIndex(
            model_name='reviewcomment',
            index=models.Index(fields=['incident', 'parent', 'resolved_at'], name='comment_open'),
        ),
        migrations.AddConstraint(
            model_name='reviewcomment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('anchor', 'timeline_entry'), ('timeline_entry__isnull', False)), models.Q(models.Q(('anchor', 'timeline_entry'), _negated=True), ('timeline_entry__isnull', True)), _connector='OR'), name='comment_timeline_anchor'),
        ),
        migrations.AddConstraint(
            model_name='reviewcomment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('anchor', 'factor'), ('factor__isnull', False)), models.Q(models.Q(('anchor', 'factor'), _negated=True), ('factor__isnull', True)), _connector='OR'), name='comment_factor_anchor'),
        ),
        migrations.AddConstraint(
            model_name='reviewcomment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('action_item__isnull', False), ('anchor', 'action_item')), models.Q(models.Q(('anchor', 'action_item'), _negated=True), ('action_item__isnull', True)), _connector='OR'), name='comment_action_anchor'),
        ),
        migrations.AddIndex(
            model_name='reviewnotice',
            index=models.Index(fields=['sent_at'], name='review_notice_unsent'),
        ),
        migrations.AddIndex(
            model_name='trashentry',
            index=models.Index(fields=['deleted_at'], name='trash_deleted_at'),
        ),
        migrations.AddIndex(
            model_name='trashentry',
            index=models.Index(fields=['incident_pk', 'deleted_at'], name='trash_incident'),
        ),
        migrations.RunPython(create_roles, remove_roles),
    ]
