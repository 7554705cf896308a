"""Forms of the guided write-up, one per step and one per kind of row.

Times are typed in the author's zone (the middleware activates it) and stored in UTC.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from .forms import DateTimeLocalInput
from .models import (
    SEVERITY_MEANINGS,
    ActionItem,
    ContributingFactor,
    FactorCategory,
    Incident,
    Service,
    Tag,
    Team,
    TimelineEntry,
)

# How far ahead of now a milestone may be before it is surely a typo (a wrong day or zone).
FUTURE_SLACK = dt.timedelta(minutes=5)

YES_NO_UNKNOWN = [("", "Not sure yet"), ("true", "Yes"), ("false", "No")]


def _text(rows: int, placeholder: str = "") -> forms.Textarea:
    attrs = {"rows": rows}
    if placeholder:
        attrs["placeholder"] = placeholder
    return forms.Textarea(attrs=attrs)


def _local(value: dt.datetime | None) -> str:
    return timezone.localtime(value).strftime("%-d %b %H:%M") if value else ""


class YesNoField(forms.TypedChoiceField):
    """Yes / No / not sure yet, stored as True / False / None."""

    def __init__(self, **kwargs):
        super().__init__(
            choices=YES_NO_UNKNOWN,
            coerce=lambda value: value == "true",
            empty_value=None,
            required=False,
            widget=forms.RadioSelect,
            **kwargs,
        )

    def prepare_value(self, value):
        if value is True:
            return "true"
        if value is False:
            return "false"
        return "" if value in (None, "None") else value


class BasicsForm(forms.ModelForm):
    blame_fields = {"summary": "summary"}

    class Meta:
        model = Incident
        fields = [
            "title", "severity", "summary", "services", "teams", "tags",
            "started_at", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at",
        ]  # fmt: skip
        widgets = {name: DateTimeLocalInput() for name in Incident.MILESTONES} | {
            "severity": forms.RadioSelect,
            "services": forms.CheckboxSelectMultiple,
            "teams": forms.CheckboxSelectMultiple,
            "tags": forms.CheckboxSelectMultiple,
            "summary": _text(3, "Two or three sentences a reader can take in at a glance."),
        }
        labels = {
            "title": "Title",
            "summary": "Summary",
            "started_at": "Started",
            "detected_at": "Detected",
            "acknowledged_at": "Acknowledged",
            "mitigated_at": "Mitigated",
            "resolved_at": "Resolved",
        }
        help_texts = {
            "title": "What a reader searching later would type: “Checkout errors after a config push”.",
            "started_at": "When the problem began, even if nobody knew yet.",
            "detected_at": "When someone or something first noticed.",
            "mitigated_at": "When the impact stopped, even if the cause was still there.",
            "resolved_at": "When the incident was over.",
        }
        error_messages = {
            "title": {"required": "Give the write-up a title — a few words are enough."},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].widget.attrs.update({"autocomplete": "off"})
        self.fields["severity"].choices = list(Incident.severity.field.choices)
        self.fields["services"].queryset = Service.objects.all()
        self.fields["teams"].queryset = Team.objects.all()
        self.fields["tags"].queryset = Tag.objects.all()
        self.fields["started_at"].required = True
        self.fields["started_at"].error_messages["required"] = (
            "When did it start? An estimate is fine; you can refine it later."
        )

    @property
    def severity_options(self):
        """The radio buttons with each level's meaning, for the template."""
        return [
            (radio, SEVERITY_MEANINGS.get(radio.data["value"], "")) for radio in self["severity"]
        ]

    @property
    def milestone_fields(self):
        return [self[name] for name in Incident.MILESTONES]

    def clean(self):
        data = super().clean()
        latest = timezone.now() + FUTURE_SLACK
        for name in Incident.MILESTONES:
            value = data.get(name)
            if value and value > latest:
                label = self.fields[name].label
                self.add_error(
                    name,
                    f"{label} is in the future ({_local(value)}). Times are in your zone, "
                    f"{timezone.get_current_timezone_name()}.",
                )
        return data


class ImpactForm(forms.ModelForm):
    blame_fields = {"impact": "impact"}
    customer_visible = YesNoField(label="Was it visible to customers?")
    data_lost = YesNoField(label="Was data lost?")

    class Meta:
        model = Incident
        fields = ["impact", "customer_visible", "data_lost"]
        widgets = {
            "impact": _text(
                8,
                "Who noticed, what they could not do, how many, for how long. "
                "Numbers help: “about 30% of checkouts failed for 40 minutes”.",
            )
        }
        labels = {"impact": "Impact"}
        help_texts = {"impact": ""}


class ReflectForm(forms.ModelForm):
    blame_fields = {"went_well": "went_well", "lucky": "lucky", "lessons": "lessons"}

    class Meta:
        model = Incident
        fields = ["went_well", "lucky", "lessons"]
        labels = {
            "went_well": "What went well?",
            "lucky": "Where did we get lucky?",
            "lessons": "What did we learn?",
        }
        help_texts = {
            "went_well": "Tools, habits and people's skills that helped — so we keep them.",
            "lucky": "What could have made this worse, and didn't — only by chance.",
            "lessons": "What would you tell another team? Lessons can be shared in the library.",
        }
        widgets = {
            "went_well": _text(5),
            "lucky": _text(5),
            "lessons": _text(5),
        }


class InsideForm(forms.Form):
    """The story in the author's words and one answer per guided question."""

    narrative = forms.CharField(
        label="The story, in your words",
        required=False,
        widget=_text(6, "Optional: tell it as it unfolded, before the questions below."),
        help_text="How it looked from the inside, as it happened.",
    )

    def __init__(self, *args, questions=(), answers=None, **kwargs):
        super().__init__(*args, **kwargs)
        answers = answers or {}
        self.questions = list(questions)
        self.blame_fields = {"narrative": "narrative"}
        for question in self.questions:
            name = f"answer-{question.pk}"
            self.fields[name] = forms.CharField(
                label=question.prompt,
                required=False,
                help_text=question.help_text,
                widget=_text(4),
            )
            self.initial.setdefault(name, answers.get(question.pk, ""))
            self.blame_fields[name] = name

    def answer_fields(self):
        return [(question, self[f"answer-{question.pk}"]) for question in self.questions]

    def answers(self) -> dict[int, str]:
        return {q.pk: self.cleaned_data.get(f"answer-{q.pk}", "") for q in self.questions}


class TimelineEntryForm(forms.ModelForm):
    blame_fields = {"text": "timeline"}

    class Meta:
        model = TimelineEntry
        fields = ["at", "kind", "text"]
        widgets = {"at": DateTimeLocalInput(), "text": _text(2)}
        labels = {"at": "Time", "kind": "Kind", "text": "What happened"}
        error_messages = {
            "at": {"required": "When did this happen?"},
            "text": {"required": "Say what happened."},
        }

    def __init__(self, *args, incident: Incident | None = None, **kwargs):
        super().__init__(*args, **kwargs)


class PasteForm(forms.Form):
    text = forms.CharField(
        label="Paste lines",
        max_length=100_000,
        widget=_text(
            6,
            "09:12 Alert fired for checkout latency\n"
            "09:15 [status update] Investigating elevated errors\n"
            "[09:21] maria: rolling back the config change",
        ),
        error_messages={"required": "Paste at least one line."},
    )


class FactorForm(forms.ModelForm):
    blame_fields = {"description": "factor"}

    class Meta:
        model = ContributingFactor
        fields = ["category", "description", "evidence", "accepted_risk", "accepted_risk_reason"]
        widgets = {
            "description": _text(
                3, "A condition, not a person: “The deploy tool allowed a config push "
                "without a canary.”"
            ),
            "evidence": forms.CheckboxSelectMultiple,
            "accepted_risk_reason": forms.TextInput,
        }  # fmt: skip
        labels = {
            "description": "What was the condition?",
            "evidence": "Evidence from the timeline",
            "accepted_risk": "We accept this risk and will not act on it",
            "accepted_risk_reason": "Why we accept it",
        }
        help_texts = {"accepted_risk": ""}
        error_messages = {"description": {"required": "Describe the condition."}}

    def __init__(self, *args, incident: Incident, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "Choose a category…"), *FactorCategory.choices]
        evidence = self.fields["evidence"]
        evidence.queryset = incident.timeline_entries.all()
        evidence.label_from_instance = lambda entry: (
            f"{_local(entry.at)} · {entry.get_kind_display()} · {_shorten(entry.text, 80)}"
        )

    def clean(self):
        data = super().clean()
        if data.get("accepted_risk") and not (data.get("accepted_risk_reason") or "").strip():
            self.add_error(
                "accepted_risk_reason", "Say why the risk is accepted, so readers understand."
            )
        return data


class ActionItemForm(forms.ModelForm):
    blame_fields = {"title": "action", "description": "action_detail"}

    class Meta:
        model = ActionItem
        fields = ["title", "kind", "team", "owner", "due", "priority", "addresses", "description"]
        widgets = {
            "due": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "addresses": forms.CheckboxSelectMultiple,
            "description": _text(3),
        }
        labels = {
            "title": "What will change?",
            "team": "Owner team",
            "owner": "Owner (optional)",
            "due": "Due date",
            "addresses": "Factors it addresses",
            "description": "Details (optional)",
        }
        help_texts = {
            "title": "A change to the system or the process: “Require a canary for config pushes”.",
            "addresses": "",
        }
        error_messages = {
            "title": {"required": "Say what will change."},
            "team": {"required": "Every action item needs an owner team."},
        }

    def __init__(self, *args, incident: Incident, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.all()
        self.fields["team"].empty_label = "Choose a team…"
        self.fields["owner"].queryset = (
            get_user_model().objects.filter(is_active=True).order_by("first_name", "username")
        )
        self.fields["owner"].label_from_instance = lambda u: u.get_full_name() or u.username
        self.fields["owner"].empty_label = "Nobody yet"
        self.fields["due"].required = True
        self.fields["due"].error_messages["required"] = (
            "Every action item needs a due date — a realistic one; it can move later."
        )
        addresses = self.fields["addresses"]
        addresses.queryset = incident.factors.all()
        addresses.label_from_instance = lambda factor: (
            f"{factor.get_category_display()}: {_shorten(factor.description, 80)}"
        )

    def clean_due(self):
        due = self.cleaned_data.get("due")
        unchanged = self.instance.pk and due == self.instance.due
        if due and not unchanged and due < timezone.localdate():
            raise forms.ValidationError("The due date is in the past; pick today or later.")
        return due


def _shorten(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"
