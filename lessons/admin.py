from django.contrib import admin

from .models import Lesson, UsefulMark


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "author", "is_published", "useful_count", "created_at"]
    list_filter = ["kind", "is_published", "tags"]
    search_fields = ["title", "body"]
    raw_id_fields = ["incidents"]
    filter_horizontal = ["tags"]
    readonly_fields = ["useful_count"]


@admin.register(UsefulMark)
class UsefulMarkAdmin(admin.ModelAdmin):
    list_display = ["lesson", "user", "created_at"]
    raw_id_fields = ["lesson", "user"]
