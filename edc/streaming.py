"""A streamed response that fails after its first bytes went out must not look complete.

Once the status line is sent the server cannot answer 500, and an unchunked body ends where the
connection ends: runserver and gunicorn (for HTTP/1.0 clients, nginx's default upstream) close it
in order, so the client takes a truncated file for the whole one. ``StreamFailureMiddleware``
logs the failure (``edc.streaming``) and resets the connection (``SO_LINGER`` 0), which clients
and proxies report as an error.
"""

from __future__ import annotations

import logging
import socket
import struct

from django.core.servers import basehttp

logger = logging.getLogger("edc.streaming")

# The environ key under which runserver's handler offers to reset the client's connection.
RESET_KEY = "edc.reset_connection"


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset, not the orderly close that ends a body as complete."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def reset_connection(environ: dict) -> bool:
    """Reset the connection of the request of ``environ``; False when the server offers no
    way (or the client has gone already)."""
    try:
        if (server_reset := environ.get(RESET_KEY)) is not None:
            server_reset()
            return True
        if (sock := environ.get("gunicorn.socket")) is not None:
            reset(sock)
            return True
    except OSError:
        pass
    return False


def guarded(content, request, username: str):
    """``content`` (a streamed response's chunks), passed on; on a failure, logged, and after
    the first chunk (the status line is on its way) the connection reset. ``GeneratorExit``
    (the server closing the stream: the client went away) is no failure and goes through."""
    started, given = False, 0
    try:
        for chunk in content:
            started = True
            yield chunk
            given += len(chunk)
    except (Exception, SystemExit):  # SystemExit: gunicorn's worker timeout
        if started:
            outcome = (
                "the connection was reset: the client sees the transfer fail"
                if reset_connection(request.META)
                else "the connection could not be reset"
            )
        else:
            outcome = "nothing was sent: the server answers 500"
        logger.error(
            # The path alone: a query string may hold a subject identifier.
            "The streamed response to %s %s (user %s) failed after %d bytes; %s.",
            request.method,
            request.path,
            username,
            given,
            outcome,
            exc_info=True,
            extra={"request": request},
        )
        raise


class StreamFailureMiddleware:
    """Guards the content of every streamed response (``guarded``): one place for every export,
    present and future. A file streamed by the server itself (``FileResponse``: static files)
    is left to the server."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.streaming
            and not response.is_async
            and getattr(response, "file_to_stream", None) is None
        ):
            user = getattr(request, "user", None)
            username = user.get_username() if user and user.is_authenticated else "anonymous"
            response.streaming_content = guarded(response.streaming_content, request, username)
        return response


# --- manage.py runserver ------------------------------------------------------------------------


class RunserverRequestHandler(basehttp.WSGIRequestHandler):
    """Django's development request handler, offering the application to reset the connection
    (``RESET_KEY`` in the environ)."""

    def get_environ(self):
        environ = super().get_environ()
        environ[RESET_KEY] = self.reset_connection
        return environ

    def reset_connection(self) -> None:
        reset(self.connection)
        # The request's file over the socket keeps it open: closing it closes the socket now,
        # before the handler would shut it down in order (FIN).
        self.rfile.close()


class RunserverWSGIServer(basehttp.WSGIServer):
    """runserver's server (``edc.management.commands.runserver``), with
    ``RunserverRequestHandler`` for Django's handler (``basehttp.run`` passes Django's)."""

    def __init__(self, server_address, handler_class, *args, **kwargs):
        if handler_class is basehttp.WSGIRequestHandler:
            handler_class = RunserverRequestHandler
        super().__init__(server_address, handler_class, *args, **kwargs)
