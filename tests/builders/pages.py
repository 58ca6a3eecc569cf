"""What a rendered page offers."""

LOGOUT_FORM = '<form method="post" action="/accounts/logout/">'


def write_forms(html: str) -> int:
    """How many POST forms a page offers, the log-out button apart."""
    return html.count('<form method="post"') - html.count(LOGOUT_FORM)
