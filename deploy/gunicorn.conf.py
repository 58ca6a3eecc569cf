"""gunicorn configuration of one app server:

    EDC_PRODUCTION=1 gunicorn -c deploy/gunicorn.conf.py edc.wsgi:application

Every setting can be changed through the environment (GUNICORN_*), see the README's "Production"
section. The app server is stateless (sessions in PostgreSQL, tasks on Redis), so more capacity is
more app servers behind the proxy, each with this file.
"""

import multiprocessing
import os

# Behind the reverse proxy that terminates TLS (nginx, a cloud load balancer): plain HTTP on a
# private address. The proxy forwards X-Forwarded-Proto (Django's SECURE_PROXY_SSL_HEADER).
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Synchronous workers: each request holds one database connection; 2 x cores + 1 is gunicorn's
# rule of thumb. The database's max_connections must cover every worker of every app server
# (plus the Celery worker and the operators).
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
# A request never runs longer than the database allows a statement (WEB_STATEMENT_TIMEOUT, 30 s)
# plus the time to answer: a worker stuck beyond this is killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Workers are replaced now and then (memory growth of long-lived processes), not all at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# The proxy's address is trusted for X-Forwarded-For / -Proto (the default: only localhost).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Web process: importing edc.wsgi sets EDC_WEB_PROCESS=1 (statement_timeout); said here as well.
raw_env = ["EDC_WEB_PROCESS=1"]
