"""The days a report covers, in UTC: whole calendar days, the last one complete by default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ecgmon.errors import ConfigurationError

MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    """Consecutive UTC days ``first``..``last`` (inclusive), reported at ``made_at``.

    Beats belong to the day they were recorded; runs and quarantined rows to the time they
    happened, from the first day's start until the report is made (a day's beats are usually
    scored after the day ends): :attr:`operations_end`.
    """

    first: date
    last: date
    made_at: datetime | None = None

    @property
    def operations_end(self) -> datetime:
        """The end of the runs and quarantine shown: when the report was made (else the end)."""
        return max(self.end, self.made_at) if self.made_at else self.end

    @property
    def start(self) -> datetime:
        """00:00 UTC of the first day."""
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """00:00 UTC of the day after the last (exclusive bound)."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def days(self) -> list[date]:
        """Every day of the period, oldest first."""
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """[00:00 UTC of ``day``, 00:00 UTC of the next day)."""
        start = datetime.combine(day, time(), tzinfo=UTC)
        return start, start + timedelta(days=1)

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first} to {self.last}"


def report_period(day: date | None, days: int | None, now: datetime) -> Period:
    """The period of ``--day D`` (that one UTC day) or ``--days N`` (the N UTC days ending
    yesterday, the last complete day at ``now``); neither: yesterday alone."""
    if day is not None and days is not None:
        raise ConfigurationError("give either a day or a number of days, not both")
    if day is not None:
        return Period(day, day, now)
    count = 1 if days is None else days
    if not 1 <= count <= MAX_DAYS:
        raise ConfigurationError(f"the number of days must be 1 to {MAX_DAYS}, not {count}")
    last = now.astimezone(UTC).date() - timedelta(days=1)
    return Period(last - timedelta(days=count - 1), last, now)
