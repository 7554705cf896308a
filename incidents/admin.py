from django.contrib import admin
from django.db.models import Q
from django.http import Http404

from . import models


class PrivateIncidentsHidden:
    """Staff who are not superusers see in the admin only what they may read in the app:
    private write-ups (listed teams or named people) that do not list them, and their parts,
    stay out of lists, search and change pages (which answer 404, as elsewhere)."""

    incident_path = "incident"  # how this model reaches its incident; "" for Incident itself

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        readable = models.Incident.objects.visible_to(request.user)
        if not self.incident_path:
            return queryset.filter(pk__in=readable.values("pk"))
        return queryset.filter(**{f"{self.incident_path}__in": readable.values("pk")})

    def get_object(self, request, object_id, from_field=None):
        # The admin's own answer for a missing object is a redirect with "doesn't exist";
        # a 404, as everywhere else, says nothing more about a private write-up.
        found = super().get_object(request, object_id, from_field)
        if found is None:
            raise Http404("No such object.")
        return found


@admin.register(models.Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "lead"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]
    autocomplete_fields = ["lead"]


@admin.register(models.Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "team"]
    list_filter = ["team"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(models.Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(models.Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "timezone", "email_reminders"]
    list_filter = ["email_reminders"]
    search_fields = ["user__username"]


class TimelineEntryInline(admin.TabularInline):
    model = models.TimelineEntry
    extra = 0


class FactorInline(admin.StackedInline):
    model = models.ContributingFactor
    extra = 0
    filter_horizontal = ["evidence"]


class ActionItemInline(admin.StackedInline):
    model = models.ActionItem
    extra = 0
    autocomplete_fields = ["team", "owner"]
    exclude = ["addresses"]


@admin.register(models.Incident)
class IncidentAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    incident_path = ""
    list_display = ["title", "severity", "status", "started_at", "visibility"]
    list_filter = ["status", "severity", "visibility", "teams", "services", "tags"]
    search_fields = ["title", "slug", "summary"]
    date_hierarchy = "started_at"
    filter_horizontal = [
        "services",
        "teams",
        "tags",
        "authors",
        "reviewers",
        "visible_teams",
        "visible_users",
    ]
    readonly_fields = ["version", "created_at", "updated_at"]
    inlines = [TimelineEntryInline, FactorInline, ActionItemInline]


@admin.register(models.TimelineEntry)
class TimelineEntryAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    list_display = ["incident", "at", "kind"]
    list_filter = ["kind"]
    search_fields = ["text", "incident__title"]
    list_select_related = ["incident"]
    raw_id_fields = ["incident"]


@admin.register(models.ContributingFactor)
class ContributingFactorAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    list_display = ["incident", "category", "accepted_risk"]
    list_filter = ["category", "accepted_risk"]
    search_fields = ["description", "incident__title"]
    list_select_related = ["incident"]
    raw_id_fields = ["incident", "evidence"]


@admin.register(models.ActionItem)
class ActionItemAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    list_display = ["title", "incident", "team", "owner", "due", "priority", "status"]
    list_filter = ["status", "priority", "kind", "team"]
    search_fields = ["title", "description", "incident__title", "owner__username"]
    list_select_related = ["incident", "team", "owner"]
    raw_id_fields = ["incident", "addresses"]
    autocomplete_fields = ["team", "owner"]
    date_hierarchy = "due"


@admin.register(models.GuidedQuestion)
class GuidedQuestionAdmin(admin.ModelAdmin):
    list_display = ["prompt", "position", "is_active"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["prompt", "help_text"]


@admin.register(models.Answer)
class AnswerAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    list_display = ["incident", "question"]
    list_select_related = ["incident", "question"]
    search_fields = ["text", "incident__title"]
    raw_id_fields = ["incident"]


@admin.register(models.BlameDismissal)
class BlameDismissalAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    list_display = ["incident", "field", "rule", "phrase", "dismissed_by"]
    list_filter = ["rule"]
    raw_id_fields = ["incident"]


@admin.register(models.Reminder)
class ReminderAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    incident_path = "action_item__incident"
    list_display = ["action_item", "kind", "due", "recipient", "sent_at"]
    list_filter = ["kind"]
    list_select_related = ["action_item", "recipient"]
    raw_id_fields = ["action_item", "recipient"]
    search_fields = ["recipient__username", "action_item__title"]


@admin.register(models.ReviewComment)
class ReviewCommentAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    list_display = ["incident", "author", "anchor", "created_at"]
    list_filter = ["anchor"]
    list_select_related = ["incident", "author"]
    raw_id_fields = ["incident", "parent"]
    search_fields = ["body", "incident__title"]


@admin.register(models.ReviewMeeting)
class ReviewMeetingAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    list_display = ["incident", "starts_at", "facilitator", "sequence"]
    list_select_related = ["incident", "facilitator"]
    raw_id_fields = ["incident"]


@admin.register(models.ReviewNotice)
class ReviewNoticeAdmin(PrivateIncidentsHidden, admin.ModelAdmin):
    list_display = ["__str__", "sent_at"]


@admin.register(models.TrashEntry)
class TrashEntryAdmin(admin.ModelAdmin):
    def get_queryset(self, request):
        # The Trash page's rule: deletes from a private write-up only for its restorers.
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        mine = models.TrashEntry.restorers.through.objects.filter(user_id=request.user.pk)
        return queryset.filter(Q(private=False) | Q(pk__in=mine.values("trashentry_id")))

    list_display = ["__str__"]


@admin.register(models.EscalationDigest)
class EscalationDigestAdmin(admin.ModelAdmin):
    list_display = ["__str__"]
