"""A real app server for ``test_export_streaming.py``, whose streamed responses can fail mid-way.

    python tests/stream_fault_server.py runserver 127.0.0.1:8123
    python tests/stream_fault_server.py gunicorn        # deploy/gunicorn.conf.py (GUNICORN_*)

A request with the header ``X-Inject-Fault: N`` gets the first N chunks of its streamed response
as the export makes them, then a ``FaultInjected`` error: what a database connection lost during
an export does. Any other request is served as usual. The fault is installed before the server
starts (gunicorn's workers inherit it); nothing else of the server changes.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAULT_HEADER = "X-Inject-Fault"
MESSAGE = "fault injected by the test: the database connection was lost mid-export"


class FaultInjected(Exception):
    pass


def install() -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import StreamingHttpResponse

    wanted = threading.local()
    handle = WSGIHandler.__call__
    init = StreamingHttpResponse.__init__

    def __call__(self, environ, start_response):
        chunks = environ.get("HTTP_" + FAULT_HEADER.upper().replace("-", "_"), "")
        wanted.chunks = int(chunks) if chunks.isdigit() else None
        return handle(self, environ, start_response)

    def failing(content, chunks: int):
        for _, chunk in zip(range(chunks), content, strict=False):
            yield chunk
        raise FaultInjected(MESSAGE)

    def __init__(self, streaming_content=(), *args, **kwargs):
        chunks = getattr(wanted, "chunks", None)
        if type(self) is StreamingHttpResponse and chunks is not None:
            streaming_content = failing(streaming_content, chunks)
        init(self, streaming_content, *args, **kwargs)

    WSGIHandler.__call__ = __call__
    StreamingHttpResponse.__init__ = __init__


def main(server: str, *args: str) -> None:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edc.settings")
    install()
    if server == "runserver":
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", "runserver", "--noreload", *args])
    elif server == "gunicorn":
        from gunicorn.app.wsgiapp import run

        sys.argv = ["gunicorn", "-c", "deploy/gunicorn.conf.py", *args, "edc.wsgi:application"]
        run()
    else:
        raise SystemExit(f"Unknown server {server!r}: runserver or gunicorn.")


if __name__ == "__main__":
    main(*sys.argv[1:])
