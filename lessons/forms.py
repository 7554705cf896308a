from django import forms

from incidents.models import FactorCategory, Incident, Tag

from .models import Lesson


class LessonFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search lessons")
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *Lesson.Kind.choices])
    tag = forms.SlugField(required=False)
    category = forms.ChoiceField(
        required=False, label="Factor", choices=[("", "Any factor"), *FactorCategory.choices]
    )
    incident = forms.SlugField(required=False, max_length=100)
    sort = forms.ChoiceField(
        required=False, label="Order",
        choices=[("", "Newest first"), ("useful", "Most useful first")],
    )  # fmt: skip


class LessonForm(forms.ModelForm):
    """Write or edit a lesson. Incidents are named by slug (the end of their address)."""

    categories = forms.MultipleChoiceField(
        required=False, label="Contributing factors", choices=FactorCategory.choices,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip
    tags = forms.ModelMultipleChoiceField(
        required=False, queryset=Tag.objects.all(), widget=forms.CheckboxSelectMultiple
    )
    incident_slugs = forms.CharField(
        required=False, label="From these incidents",
        help_text="The end of each incident's address, separated by commas. Leave empty for a "
        "near miss or a story of your own.",
        widget=forms.TextInput(attrs={"placeholder": "checkout-500s-2026-03-02"}),
    )  # fmt: skip

    class Meta:
        model = Lesson
        fields = ["title", "kind", "body", "do_differently", "categories", "is_published"]
        labels = {"is_published": "Published in the library", "body": "What happened"}
        help_texts = {
            "body": "What happened and what it taught you, told blamelessly: the conditions, "
            "not the person. Markdown works.",
            "do_differently": "Concretely, next time. Markdown works.",
        }
        widgets = {"do_differently": forms.Textarea(attrs={"rows": 4})}

    field_order = ["title", "kind", "incident_slugs", "body", "do_differently", "categories",
                   "tags", "is_published"]  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if self.instance.pk:
            self.fields["tags"].initial = list(self.instance.tags.all())
            # Links to incidents this editor may not read are kept on save, never shown.
            readable = Incident.objects.visible_to(user).filter(lesson_entries=self.instance)
            self.fields["incident_slugs"].initial = ", ".join(
                readable.values_list("slug", flat=True)
            )

    def clean_incident_slugs(self):
        slugs = [s.strip() for s in self.cleaned_data["incident_slugs"].split(",") if s.strip()]
        if len(slugs) > 20:
            raise forms.ValidationError("Link at most 20 incidents.")
        found = list(Incident.objects.visible_to(self.user).filter(slug__in=slugs))
        missing = sorted(set(slugs) - {i.slug for i in found})
        if missing:
            raise forms.ValidationError(
                "No incident you may read has the address " + ", ".join(missing) + "."
            )
        return found

    def clean(self):
        data = super().clean()
        if data.get("kind") == Lesson.Kind.FROM_INCIDENT and not data.get("incident_slugs"):
            self.add_error(
                "incident_slugs",
                "Name the incident this lesson comes from, or choose “Near miss” or “War story”.",
            )
        return data
