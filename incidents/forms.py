from django import forms

from .models import SEVERITY_MEANINGS, ActionItem, Incident, Service, Tag, Team


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class IncidentForm(forms.ModelForm):
    """The plain create/edit form. Times are typed in the author's zone and stored in UTC."""

    class Meta:
        model = Incident
        fields = [
            "title", "severity", "summary", "started_at", "detected_at", "acknowledged_at",
            "mitigated_at", "resolved_at", "services", "teams", "tags", "impact",
            "customer_visible", "data_lost", "narrative", "went_well", "lucky", "lessons",
        ]  # fmt: skip
        widgets = {
            name: DateTimeLocalInput()
            for name in (
                "started_at",
                "detected_at",
                "acknowledged_at",
                "mitigated_at",
                "resolved_at",
            )
        } | {
            "services": forms.CheckboxSelectMultiple,
            "teams": forms.CheckboxSelectMultiple,
            "tags": forms.CheckboxSelectMultiple,
            "customer_visible": forms.NullBooleanSelect,
            "data_lost": forms.NullBooleanSelect,
            "summary": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].widget.attrs["autofocus"] = True
        self.fields["severity"].help_text = " · ".join(
            f"{key}: {meaning}" for key, meaning in SEVERITY_MEANINGS.items()
        )
        self.fields["services"].queryset = Service.objects.all()
        self.fields["teams"].queryset = Team.objects.all()
        self.fields["tags"].queryset = Tag.objects.all()
        self.fields["started_at"].required = True


class IncidentFilterForm(forms.Form):
    """The browse filters. Everything optional; unknown values are reported, never a 500."""

    q = forms.CharField(required=False, max_length=500, label="Search")
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Incident.Status.choices]
    )
    severity = forms.ChoiceField(
        required=False, choices=[("", "Any severity"), *Incident.severity.field.choices]
    )
    service = forms.SlugField(required=False)
    team = forms.SlugField(required=False)
    tag = forms.SlugField(required=False)
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end of the range must not be before its start.")
        return data


class ActionItemFilterForm(forms.Form):
    team = forms.SlugField(required=False)
    owner = forms.CharField(required=False, max_length=150)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *ActionItem.Status.choices]
    )
    priority = forms.ChoiceField(
        required=False, choices=[("", "Any priority"), *ActionItem.Priority.choices]
    )
    overdue = forms.BooleanField(required=False, label="Overdue only")
