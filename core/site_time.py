"""Site time: date-times are stored in UTC and entered and shown in the site's local time, with the
zone named ("24 Nov 2026 21:02 CST").

Anything without a zone means UTC, named as such: a page about several sites never guesses.
Conversions go through ``zoneinfo``: a local time that does not exist is refused, and one that
happens twice takes the caller's ``fold``, never silently shifted. Times near the ends of
``datetime`` are refused, since their UTC moment or SAE deadline might not exist.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import CharField, DateField, F, Func, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EARLIER, LATER = 0, 1  # which occurrence of a repeated local time (datetime.fold)
# The wall-clock times a site may enter: a year inside what datetime holds on both sides, so the
# UTC moment, its reading in any zone (offsets stay within a day) and the day-long clocks added
# to it exist. Clinical plausibility (not before the study, not in the future) is the models'.
EARLIEST_LOCAL = datetime(1900, 1, 1)
LATEST_LOCAL = datetime(9998, 12, 31, 23, 59, 59, 999999)


def default_time_zone() -> str:
    """The zone of a new site: the setting ``EDC_DEFAULT_SITE_TIME_ZONE``."""
    return getattr(settings, "EDC_DEFAULT_SITE_TIME_ZONE", "Asia/Shanghai")


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_time_zone(name: str) -> None:
    """Model and form validator: an IANA zone name zoneinfo knows (e.g. Asia/Shanghai)."""
    if name not in _known_zones():
        raise ValidationError(
            "%(name)s is not a time zone name: use an IANA name such as Asia/Shanghai or "
            "Europe/Paris.",
            code="invalid_time_zone",
            params={"name": name},
        )


def zone_of(holder) -> tzinfo:
    """The zone of ``holder``: a zone, a zone name, a site, or a record with a ``site``; UTC
    for anything else."""
    if isinstance(holder, tzinfo):
        return holder
    if hasattr(holder, "site") and not hasattr(holder, "time_zone"):
        holder = holder.site
    name = getattr(holder, "time_zone", holder)
    if not name or not isinstance(name, str):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_name(holder) -> str:
    """The IANA name of ``holder``'s zone ("UTC" for UTC)."""
    zone = zone_of(holder)
    return getattr(zone, "key", None) or "UTC"


def abbreviation(local: datetime) -> str:
    """The zone's abbreviation at that moment (CST, CET/CEST); a zone without one (tzdata
    writes "+07") reads "UTC+07"."""
    name = local.tzname() or "UTC"
    return f"UTC{name}" if name[0] in "+-" else name


def to_site_time(value: datetime, holder) -> datetime:
    """The aware UTC (or any aware) ``value`` as the local time of ``holder``'s zone."""
    return value.astimezone(zone_of(holder))


def date_at(moment: datetime, holder) -> date:
    """The date at ``holder``'s site of the aware ``moment``: a clinical date is the site's (a
    Shanghai morning is still the day before in UTC)."""
    return to_site_time(moment, holder).date()


def today_at(holder, now: datetime | None = None) -> date:
    """Today (or ``now``'s date) at ``holder``'s site."""
    return date_at(now or timezone.now(), holder)


def format_site_time(value, holder=None) -> str:
    """``value`` as people at the site read it: "24 Nov 2026 21:02 CST" (a date: "24 Nov
    2026"); "" for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a naive value in this project is UTC (USE_TZ)
            value = value.replace(tzinfo=UTC)
        local = to_site_time(value, holder)
        return f"{_date_text(local)} {local:%H:%M} {abbreviation(local)}"
    if isinstance(value, date):
        return _date_text(value)
    return str(value)


def _date_text(day: date) -> str:
    return f"{day.day:02d} {MONTHS[day.month - 1]} {day.year}"


class NonexistentLocalTime(ValueError):
    """A local time skipped by a daylight saving change."""


class OutOfRangeLocalTime(ValueError):
    """A local time outside ``EARLIEST_LOCAL``..``LATEST_LOCAL`` (say, year 1 or 9999)."""


OUT_OF_RANGE = (
    f"Enter a date and time between {_date_text(EARLIEST_LOCAL)} {EARLIEST_LOCAL:%H:%M} and "
    f"{_date_text(LATEST_LOCAL)} {LATEST_LOCAL:%H:%M}."
)


def check_in_range(local: datetime) -> datetime:
    """``local``, a wall-clock reading (naive, or with the offset it was given in), if within
    ``EARLIEST_LOCAL``..``LATEST_LOCAL``; else ``OutOfRangeLocalTime``, before any conversion
    overflows."""
    if not EARLIEST_LOCAL <= local.replace(tzinfo=None) <= LATEST_LOCAL:
        raise OutOfRangeLocalTime(OUT_OF_RANGE)
    return local


def from_site_time(naive: datetime, holder, *, fold: int = EARLIER) -> datetime:
    """The UTC moment of the local wall-clock time ``naive`` at ``holder``'s zone.

    Raises ``NonexistentLocalTime`` for a time the clocks skipped; for a time they repeat,
    ``fold`` picks the EARLIER or the LATER occurrence. Raises ``OutOfRangeLocalTime`` for a time
    outside ``EARLIEST_LOCAL``..``LATEST_LOCAL``.
    """
    check_in_range(naive)
    zone = zone_of(holder)
    local = naive.replace(tzinfo=zone, fold=fold)
    moment = local.astimezone(UTC)
    # A skipped time does not survive the round trip (zoneinfo maps it past the gap).
    if moment.astimezone(zone).replace(tzinfo=None) != naive.replace(tzinfo=None):
        raise NonexistentLocalTime(
            f"{_date_text(naive)} {naive:%H:%M} does not exist in {zone_name(zone)}: the clocks "
            "went forward at that hour. Check the time."
        )
    return moment


class SiteDate(Func):
    """SQL: the date at a site of a moment stored in UTC, per row: ``moment`` is the path to the
    date-time (or an expression of one: ``Value(now)``), ``site`` the path to the site (e.g.
    ``SiteDate("updated", "subject__site")``). A CRF saved on a Shanghai morning was saved that
    day, though it is still the day before in UTC. A site without a zone counts in UTC, as
    ``zone_of`` does. PostgreSQL: ``AT TIME ZONE``; SQLite: Django's own date function, which
    takes the zone as an argument."""

    output_field = DateField()

    def __init__(self, moment, site: str):
        zone = Coalesce(
            NullIf(F(f"{site}__time_zone"), Value("")), Value("UTC"), output_field=CharField()
        )
        super().__init__(F(moment) if isinstance(moment, str) else moment, zone)

    def _parts(self, compiler):
        (moment, moment_params), (zone, zone_params) = (
            compiler.compile(e) for e in self.get_source_expressions()
        )
        return moment, zone, (*moment_params, *zone_params)

    def as_sql(self, compiler, connection, function=None, template=None, arg_joiner=None, **extra):
        # PostgreSQL
        moment, zone, params = self._parts(compiler)
        return f"(({moment}) AT TIME ZONE ({zone}))::date", params

    def as_sqlite(self, compiler, connection, **extra):
        moment, zone, params = self._parts(compiler)
        return f"django_datetime_cast_date({moment}, {zone}, 'UTC')", params
