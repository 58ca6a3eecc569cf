"""``manage.py runserver`` (``make demo``): WhiteNoise's (static files as in production), on a
server whose handler can reset a connection, so that a streamed export failing mid-way fails
visibly (``edc.streaming``) instead of ending as if complete."""

from whitenoise.runserver_nostatic.management.commands.runserver import Command as Base

from edc.streaming import RunserverWSGIServer


class Command(Base):
    server_cls = RunserverWSGIServer
