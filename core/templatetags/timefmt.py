"""Date-times on the site pages: ``{% load timefmt %}``, then ``{{ value|site_time:subject.site }}``
reads "24 Nov 2026 21:02 CST", the local time of the record's site with its zone named
(``core.site_time``). The argument is a site, a record of a site (``.site``) or a zone name;
none at all (a page about several sites) shows UTC, named "UTC". A value that is not a date-time
(an audit trail's old -> new text) is shown as it is."""

from django import template

from core.site_time import format_site_time, zone_name

register = template.Library()


@register.filter
def site_time(value, holder=None):
    return format_site_time(value, holder)


@register.filter
def time_zone_name(holder):
    """The IANA name of the site's zone: ``{{ subject.site|time_zone_name }}`` (Asia/Shanghai)."""
    return zone_name(holder)
