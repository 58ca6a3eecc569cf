"""A NUL character (``%00``) in the address or the query string is a 400 with a sentence.

PostgreSQL text cannot hold a NUL, so a NUL reaching a query (``?subject=%00``,
``/subjects/%00/``) is a ``DataError``: a 500. No page, identifier, code or search text of
the site contains one, so the request is refused here, before any view reads it: one place for
every URL, filter and search, present and future, of the web pages and of the API (where the
answer is JSON ``{"detail": ...}``, as every API error). Request bodies are the forms' business
(Django's form fields refuse a NUL with a form error). A cookie holding a NUL (a quoted cookie
may spell one as ``\\000``) is no cookie of this site's: ``DropNulCookiesMiddleware`` forgets it
before the session middleware would look its key up.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render

NUL = "\x00"


def nul_sentence(request) -> str | None:
    """Why the request is refused (where its NUL is), or None when it has none."""
    if NUL in request.path_info:
        return (
            "The address has a NUL character (%00) in it, which no page, identifier or code of "
            "this site contains: check the link you followed."
        )
    for name, values in request.GET.lists():
        if NUL in name:
            return (
                "A parameter name has a NUL character (%00) in it, which no parameter of this "
                "site has: check the address."
            )
        if any(NUL in value for value in values):
            return (
                f"The parameter {name} has a NUL character (%00) in its value, which no "
                "identifier, code or text contains: remove it."
            )
    return None


class DropNulCookiesMiddleware:
    """Before the session and CSRF middlewares: a cookie whose value holds a NUL is treated as
    absent (a new session, a new CSRF cookie), as any unknown session key is."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        cookies = request.COOKIES
        for name in [n for n, value in cookies.items() if NUL in n or NUL in value]:
            del cookies[name]
        return self.get_response(request)


class RefuseNulBytesMiddleware:
    """After the authentication middleware, so the web page shows who is logged in."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sentence = nul_sentence(request)
        if sentence is None:
            return self.get_response(request)
        if request.path_info.startswith("/api/"):
            return JsonResponse({"detail": sentence}, status=400)
        return render(request, "400.html", {"message": sentence}, status=400)
