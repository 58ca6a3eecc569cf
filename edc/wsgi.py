"""The WSGI application (gunicorn: ``deploy/gunicorn.conf.py``).

Importing it marks the process as a web process (``EDC_WEB_PROCESS=1``) before the settings load:
its database connections get the web requests' ``statement_timeout`` (``WEB_STATEMENT_TIMEOUT``),
which management commands and the Celery worker, never importing this module, do not.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edc.settings")
os.environ.setdefault("EDC_WEB_PROCESS", "1")
application = get_wsgi_application()
