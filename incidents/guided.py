"""The guided write-up as data: its steps, what makes each one complete, the checklist shown
before submitting, and how blame findings are presented.

Pure functions over plain values (`WriteUpFacts`): no queries and no HTTP, so the rules are
unit-tested on their own and the views only gather facts and render.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from . import blame

COMPLETE = "complete"
STARTED = "started"
MISSING = "missing"


@dataclass(frozen=True)
class Step:
    slug: str
    title: str  # short, for the progress bar
    heading: str  # the question the page asks
    intro: str

    @property
    def number(self) -> int:
        return STEP_SLUGS.index(self.slug) + 1


STEPS: tuple[Step, ...] = (
    Step("basics", "Basics", "The basics",
         "Name the incident, how severe it was, what it touched and when things happened. "
         "Estimates are fine; you can refine them later."),
    Step("impact", "Impact", "Who and what was affected?",
         "Describe the impact in plain words: who noticed, what they could not do, for how long."),
    Step("timeline", "Timeline", "What happened, and when?",
         "Add what was seen, decided and done, in order. Paste a chat log or notes to add many "
         "entries at once."),
    Step("inside", "From the inside", "What happened, from the inside",
         "Answer from what people knew and saw at the time, not from what we know now. Skip a "
         "question that does not apply."),
    Step("factors", "Factors", "What made this possible, or worse?",
         "Contributing factors are conditions of the system and the organisation — never a "
         "person. Link each to the timeline entries that show it."),
    Step("reflect", "Went well", "What went well, where we got lucky, what we learned",
         "Incidents also show what works. Write down what helped, so we keep it."),
    Step("actions", "Action items", "What will we change?",
         "Action items fix the process, the tools and the system — not the people. Each needs "
         "an owner team and a due date."),
    Step("review", "Review", "Review and submit",
         "Check what is still missing, look at the wording once more, then ask for a review."),
)  # fmt: skip
STEP_SLUGS: tuple[str, ...] = tuple(step.slug for step in STEPS)
FIRST_STEP = STEPS[0]


def get_step(slug: str) -> Step | None:
    return next((step for step in STEPS if step.slug == slug), None)


def previous_step(step: Step) -> Step | None:
    index = STEP_SLUGS.index(step.slug)
    return STEPS[index - 1] if index > 0 else None


def next_step(step: Step) -> Step | None:
    index = STEP_SLUGS.index(step.slug)
    return STEPS[index + 1] if index + 1 < len(STEPS) else None


# --------------------------------------------------------------------------------------------
# Facts and completeness
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorFacts:
    id: int
    label: str  # the start of its description, for links and messages
    has_evidence: bool
    addressed: bool  # by at least one action item
    accepted_risk: bool


@dataclass(frozen=True)
class WriteUpFacts:
    """What the completeness rules need to know about one write-up, gathered by the view."""

    title: str = ""
    has_start: bool = False
    has_services_or_teams: bool = False
    impact: str = ""
    customer_visible: bool | None = None
    data_lost: bool | None = None
    timeline_kinds: frozenset[str] = frozenset()
    timeline_count: int = 0
    questions: int = 0
    answered: int = 0
    narrative: str = ""
    factors: tuple[FactorFacts, ...] = ()
    went_well: str = ""
    lucky: str = ""
    lessons: str = ""
    action_items: int = 0
    status: str = "draft"


@dataclass(frozen=True)
class CheckItem:
    """One line of the review checklist. `step` and `anchor` say where to fix it."""

    key: str
    label: str
    ok: bool
    step: str
    anchor: str = ""
    fix: str = ""  # what to do, shown beside an open gap


def _written(text: str) -> bool:
    return bool(text and text.strip())


def checklist(facts: WriteUpFacts) -> list[CheckItem]:
    items = [
        CheckItem(
            "basics", "Start time and the services or teams involved", facts.has_start
            and facts.has_services_or_teams, "basics", "services-field",
            "Pick the services or teams the incident touched.",
        ),
        CheckItem(
            "impact", "Impact written", _written(facts.impact), "impact", "id_impact",
            "Say who and what was affected, and for how long.",
        ),
        CheckItem(
            "impact_flags", "Customer visibility and data loss stated",
            facts.customer_visible is not None and facts.data_lost is not None, "impact",
            "impact-flags", "Answer “visible to customers?” and “data lost?”.",
        ),
        CheckItem(
            "detection", "The timeline has a detection", "detection" in facts.timeline_kinds,
            "timeline", "add-entry", "Add the entry for when and how the incident was noticed.",
        ),
        CheckItem(
            "resolution", "The timeline has a resolution", "resolution" in facts.timeline_kinds,
            "timeline", "add-entry", "Add the entry for when it was resolved.",
        ),
        CheckItem(
            "inside", f"Guided questions answered ({facts.answered} of {facts.questions})",
            facts.questions == 0 or facts.answered >= facts.questions, "inside", "questions",
            "Answer the remaining questions, or write “does not apply”.",
        ),
        CheckItem(
            "factors", "At least one contributing factor", bool(facts.factors), "factors",
            "add-factor", "Name the conditions that made the incident possible or worse.",
        ),
    ]  # fmt: skip
    for factor in facts.factors:
        items.append(
            CheckItem(
                f"evidence-{factor.id}", f"“{factor.label}” has evidence from the timeline",
                factor.has_evidence, "factors", f"factors-{factor.id}",
                "Link the timeline entries that show this factor.",
            )
        )  # fmt: skip
    for factor in facts.factors:
        items.append(
            CheckItem(
                f"addressed-{factor.id}",
                f"“{factor.label}” is addressed by an action item or accepted as a risk",
                factor.addressed or factor.accepted_risk, "actions", "add-action",
                "Add an action item for it, or accept it as a risk on the factors step.",
            )
        )  # fmt: skip
    items.append(
        CheckItem(
            "reflect", "What went well, where we got lucky and lessons written",
            all(_written(t) for t in (facts.went_well, facts.lucky, facts.lessons)), "reflect",
            "id_went_well", "A sentence each is enough.",
        )
    )  # fmt: skip
    return items


def step_states(facts: WriteUpFacts) -> dict[str, str]:
    """complete / started / missing for each step, for the progress bar."""
    every_factor_handled = all(f.addressed or f.accepted_risk for f in facts.factors)

    def state(done: bool, begun: bool) -> str:
        return COMPLETE if done else STARTED if begun else MISSING

    impact_bits = (
        _written(facts.impact),
        facts.customer_visible is not None,
        facts.data_lost is not None,
    )
    reflect_bits = (_written(facts.went_well), _written(facts.lucky), _written(facts.lessons))
    states = {
        "basics": state(facts.has_start and facts.has_services_or_teams, _written(facts.title)),
        "impact": state(all(impact_bits), any(impact_bits)),
        "timeline": state(
            {"detection", "resolution"} <= facts.timeline_kinds, facts.timeline_count > 0
        ),
        "inside": state(
            facts.answered >= facts.questions and (facts.answered or _written(facts.narrative)),
            facts.answered > 0 or _written(facts.narrative),
        ),
        "factors": state(
            bool(facts.factors) and all(f.has_evidence for f in facts.factors),
            bool(facts.factors),
        ),
        "reflect": state(all(reflect_bits), any(reflect_bits)),
        # Every factor handled; and something to do unless every factor is an accepted risk.
        "actions": state(
            bool(facts.factors)
            and every_factor_handled
            and (facts.action_items > 0 or all(f.accepted_risk for f in facts.factors)),
            facts.action_items > 0,
        ),
    }
    states["review"] = COMPLETE if facts.status != "draft" else MISSING
    return states


def open_gaps(items: Iterable[CheckItem]) -> list[CheckItem]:
    return [item for item in items if not item.ok]


# --------------------------------------------------------------------------------------------
# Blame findings, as the author sees them
# --------------------------------------------------------------------------------------------

# The free-text fields of the write-up that are checked, where each lives and how it is named
# in a dismissal. Rows (timeline entries, factors, action items) share one name per kind: a
# dismissed phrase stays dismissed for every row of that kind.
FIELD_STEPS = {
    "summary": "basics",
    "impact": "impact",
    "narrative": "inside",
    "timeline": "timeline",
    "factor": "factors",
    "went_well": "reflect",
    "lucky": "reflect",
    "lessons": "reflect",
    "action": "actions",
    "action_detail": "actions",
}
FIELD_LABELS = {
    "summary": "Summary",
    "impact": "Impact",
    "narrative": "The story",
    "timeline": "Timeline",
    "factor": "Contributing factor",
    "went_well": "What went well",
    "lucky": "Where we got lucky",
    "lessons": "Lessons",
    "action": "Action item",
    "action_detail": "Action item details",
}
ANSWER_PREFIX = "answer-"


def step_of_field(field_name: str) -> str | None:
    if field_name.startswith(ANSWER_PREFIX):
        return "inside"
    return FIELD_STEPS.get(field_name)


def is_checked_field(field_name: str) -> bool:
    if field_name.startswith(ANSWER_PREFIX):
        return field_name[len(ANSWER_PREFIX) :].isdigit()
    return field_name in FIELD_STEPS


def normalise_phrase(phrase: str) -> str:
    """How a dismissed phrase is stored and compared: case and spacing do not matter."""
    return " ".join(phrase.split()).casefold()[:200]


@dataclass(frozen=True)
class ShownFinding:
    """A finding ready for a template: the phrase in its context, escaped piece by piece."""

    field: str
    line: int
    text: str
    rule: str
    suggestion: str
    before: str
    after: str
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def highlighted(self) -> SafeString:
        # Each piece of the author's text is escaped on its own; only our <mark> is markup.
        return mark_safe(
            f"{conditional_escape(self.before)}<mark>{conditional_escape(self.text)}</mark>"
            f"{conditional_escape(self.after)}"
        )

    @property
    def dismiss_values(self) -> str:
        """JSON for hx-vals on the dismiss button (auto-escaped into the attribute)."""
        return json.dumps(
            {"dismiss_field": self.field, "dismiss_rule": self.rule, "dismiss_phrase": self.text}
        )

    @property
    def dismiss_token(self) -> str:
        """One value naming the finding, for the no-JavaScript dismiss button."""
        return "|".join((self.field, self.rule, self.text))


CONTEXT_CHARS = 48


def _context(line: str, start: int, end: int) -> tuple[str, str]:
    before = line[:start]
    after = line[end:]
    if len(before) > CONTEXT_CHARS:
        cut = before[-CONTEXT_CHARS:]
        space = cut.find(" ")
        before = "…" + (cut[space + 1 :] if 0 <= space < 20 else cut)
    if len(after) > CONTEXT_CHARS:
        cut = after[:CONTEXT_CHARS]
        space = cut.rfind(" ")
        after = (cut[:space] if space > CONTEXT_CHARS - 20 else cut) + "…"
    return before, after


def parse_dismiss_token(token: str) -> tuple[str, str, str] | None:
    parts = token.split("|", 2)  # field and rule never hold "|"; the phrase may
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def find_blame(
    field_name: str,
    text: str,
    *,
    dismissed: Iterable[tuple[str, str, str]] = (),
    names: Iterable[str] = (),
) -> list[ShownFinding]:
    """The findings in one field's text that the author has not dismissed."""
    if not text or not text.strip():
        return []
    if field_name == "action":
        found = blame.check_action_item(text)
    else:
        found = blame.check(text, names=names)
    hidden = {(f, r, normalise_phrase(p)) for f, r, p in dismissed}
    lines = text.splitlines() or [text]
    shown = []
    for finding in found:
        if (field_name, finding.rule, normalise_phrase(finding.text)) in hidden:
            continue
        line = lines[finding.line - 1] if 0 < finding.line <= len(lines) else finding.text
        before, after = _context(line, finding.start, finding.end)
        shown.append(
            ShownFinding(
                field=field_name, line=finding.line, text=finding.text, rule=finding.rule,
                suggestion=finding.suggestion, before=before, after=after,
            )
        )  # fmt: skip
    return shown
