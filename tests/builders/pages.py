"""What a rendered page offers."""

import re

LOGOUT_FORM = '<form method="post" action="/accounts/logout/">'


def write_forms(html: str) -> int:
    """How many POST forms a page offers, the log-out button apart."""
    return html.count('<form method="post"') - html.count(LOGOUT_FORM)


def token_in(html: str) -> str:
    """The one-time submission token of the form on the page (``core.forms``)."""
    found = re.search(r'<input type="hidden" name="submission" value="([0-9a-f-]+)"', html)
    assert found, "the page has no submission token"
    return found.group(1)
