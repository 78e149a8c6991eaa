"""The questionnaire catalogue (SPEC §6): items, answer options and scoring of each instrument.

The one place that knows how many answers an instrument takes, their range, and how a total maps
to a severity band. The request serializer validates against it, the service scores with it, and
GET /api/v1/instruments/ shows it to the phone app.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from journal.models import Instrument


@dataclass(frozen=True)
class Option:
    value: int
    label: str


@dataclass(frozen=True)
class Item:
    text: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Band:
    min: int
    max: int
    severity: str  # snake_case code, stored on the assessment
    label: str


@dataclass(frozen=True)
class InstrumentSpec:
    code: str
    name: str
    instructions: str
    items: tuple[Item, ...]
    bands: tuple[Band, ...] = ()  # none: the total has no severity (PACS)

    @property
    def item_count(self) -> int:
        return len(self.items)

    def answer_range(self, index: int) -> tuple[int, int]:
        values = [option.value for option in self.items[index].options]
        return min(values), max(values)

    @property
    def min_score(self) -> int:
        return sum(self.answer_range(i)[0] for i in range(self.item_count))

    @property
    def max_score(self) -> int:
        return sum(self.answer_range(i)[1] for i in range(self.item_count))

    def score(self, answers: Sequence[int]) -> tuple[int, str | None]:
        """The total and its severity band (None for an instrument without bands).

        Answers are validated before they get here; a wrong one is a bug, not a 400.
        """
        if len(answers) != self.item_count:
            raise ValueError(f"{self.code} takes {self.item_count} answers, got {len(answers)}")
        for index, answer in enumerate(answers):
            low, high = self.answer_range(index)
            if isinstance(answer, bool) or not isinstance(answer, int) or not low <= answer <= high:
                raise ValueError(f"{self.code} item {index + 1}: {answer!r} is outside {low}–{high}")
        total = sum(answers)
        severity = next((band.severity for band in self.bands if band.min <= total <= band.max), None)
        return total, severity


def _options(*labels: str) -> tuple[Option, ...]:
    return tuple(Option(value, label) for value, label in enumerate(labels))


def _items(options: tuple[Option, ...], *texts: str) -> tuple[Item, ...]:
    return tuple(Item(text, options) for text in texts)


_HOW_OFTEN = _options("Not at all", "Several days", "More than half the days", "Nearly every day")

PHQ9 = InstrumentSpec(
    code=Instrument.PHQ9.value,
    name="PHQ-9",
    instructions="Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    items=_items(
        _HOW_OFTEN,
        "Little interest or pleasure in doing things",
        "Feeling down, depressed, or hopeless",
        "Trouble falling or staying asleep, or sleeping too much",
        "Feeling tired or having little energy",
        "Poor appetite or overeating",
        "Feeling bad about yourself — or that you are a failure or have let yourself or your family down",
        "Trouble concentrating on things, such as reading the newspaper or watching television",
        "Moving or speaking so slowly that other people could have noticed? Or the opposite — being so fidgety "
        "or restless that you have been moving around a lot more than usual",
        "Thoughts that you would be better off dead, or of hurting yourself in some way",
    ),
    bands=(
        Band(0, 4, "minimal", "Minimal"),
        Band(5, 9, "mild", "Mild"),
        Band(10, 14, "moderate", "Moderate"),
        Band(15, 19, "moderately_severe", "Moderately severe"),
        Band(20, 27, "severe", "Severe"),
    ),
)

GAD7 = InstrumentSpec(
    code=Instrument.GAD7.value,
    name="GAD-7",
    instructions="Over the last 2 weeks, how often have you been bothered by the following problems?",
    items=_items(
        _HOW_OFTEN,
        "Feeling nervous, anxious, or on edge",
        "Not being able to stop or control worrying",
        "Worrying too much about different things",
        "Trouble relaxing",
        "Being so restless that it is hard to sit still",
        "Becoming easily annoyed or irritable",
        "Feeling afraid, as if something awful might happen",
    ),
    bands=(
        Band(0, 4, "minimal", "Minimal"),
        Band(5, 9, "mild", "Mild"),
        Band(10, 14, "moderate", "Moderate"),
        Band(15, 21, "severe", "Severe"),
    ),
)

# Penn Alcohol Craving Scale (Flannery, Volpicelli & Pettinati, 1999): each item has its own anchors.
PACS = InstrumentSpec(
    code=Instrument.PACS.value,
    name="Penn Alcohol Craving Scale",
    instructions="For each question, choose the answer that best describes the past week.",
    items=(
        Item(
            "How often have you thought about drinking or about how good a drink would make you feel?",
            _options(
                "Never (0 times)",
                "Rarely (1 to 2 times)",
                "Occasionally (3 to 4 times)",
                "Sometimes (5 to 10 times, or 1 to 2 times a day)",
                "Often (11 to 20 times, or 2 to 3 times a day)",
                "Most of the time (20 to 40 times, or 3 to 6 times a day)",
                "Nearly all of the time (more than 40 times, or more than 6 times a day)",
            ),
        ),
        Item(
            "At its most severe point, how strong was your craving during the past week?",
            _options(
                "None at all",
                "Slight, that is, a very mild urge",
                "Mild urge",
                "Moderate urge",
                "Strong urge, but easily controlled",
                "Strong urge and would have been difficult to control",
                "Strong urge and would have drunk alcohol if it were available",
            ),
        ),
        Item(
            "During the past week, how much time have you spent thinking about drinking or about how good a "
            "drink would make you feel?",
            _options(
                "None at all",
                "Less than 20 minutes",
                "21 to 45 minutes",
                "46 to 90 minutes",
                "90 minutes to 3 hours",
                "Between 3 and 6 hours",
                "More than 6 hours",
            ),
        ),
        Item(
            "How difficult would it have been to resist taking a drink during the past week if you had known a "
            "bottle was in your house?",
            _options(
                "Not difficult at all",
                "Very mildly difficult",
                "Mildly difficult",
                "Moderately difficult",
                "Very difficult",
                "Extremely difficult",
                "Would not be able to resist",
            ),
        ),
        Item(
            "Keeping in mind your responses to the previous questions, please rate your overall average alcohol "
            "craving for the past week.",
            _options(
                "Never thought about drinking and never had the urge to drink",
                "Rarely thought about drinking and rarely had the urge to drink",
                "Occasionally thought about drinking and occasionally had the urge to drink",
                "Sometimes thought about drinking and sometimes had the urge to drink",
                "Often thought about drinking and often had the urge to drink",
                "Thought about drinking most of the time and had the urge to drink most of the time",
                "Thought about drinking nearly all of the time and had the urge to drink nearly all of the time",
            ),
        ),
    ),
)

INSTRUMENTS: dict[str, InstrumentSpec] = {spec.code: spec for spec in (PHQ9, GAD7, PACS)}
assert set(INSTRUMENTS) == set(Instrument.values), "every stored instrument needs a catalogue entry"


def instrument(code: str) -> InstrumentSpec:
    return INSTRUMENTS[code]


def instruments() -> list[InstrumentSpec]:
    return list(INSTRUMENTS.values())
