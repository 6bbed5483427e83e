"""As-of times of relation snapshots: parsing `--as-of`, the text the registry stores, and the
dates of a backfill."""

from __future__ import annotations

from datetime import datetime


def parse_as_of(value: str | datetime | None) -> datetime | None:
    """`--as-of` as a timestamp; a clear error names the bad value."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--as-of {value!r} is not an ISO date or timestamp "
            "(e.g. 1998-03-01 or 1998-03-01T12:00)"
        ) from None


def ts_text(as_of: datetime | None) -> str | None:
    """An as-of time as the text the registry and the SQL take."""
    return None if as_of is None else as_of.isoformat(sep=" ")


def as_of_dates(start: str, end: str, every: str) -> list[datetime]:
    """The as-of dates of a backfill: start, start + every, ... up to and including end."""
    from datetime import timedelta

    units = {"h": "hours", "d": "days", "w": "weeks"}
    value, unit = every[:-1], every[-1:]
    if unit not in units or not value.isdigit() or int(value) < 1:
        raise ValueError(f"--every {every!r} must look like 12h, 1d or 1w")
    step = timedelta(**{units[unit]: int(value)})
    first, last = parse_as_of(start), parse_as_of(end)
    assert first is not None and last is not None
    if last < first:
        raise ValueError(f"--end {end} is before --start {start}")
    dates = [first]
    while dates[-1] + step <= last:
        dates.append(dates[-1] + step)
    return dates
