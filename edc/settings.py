"""Settings, driven by the environment.

DATABASE_URL       default: a SQLite file in var/ (zero-setup); production and CI: PostgreSQL.
CELERY_BROKER_URL  unset: Celery tasks run eagerly in-process.
SECRET_KEY         unset: a random key is made once and kept in var/secret_key (never committed).
DEBUG              off unless set to 1/true/yes.
ALLOWED_HOSTS      comma-separated; default localhost names.
EDC_REFERENCE_DATA folder with the CTCAE workbook/CSV and the ODM schemas (tests and loaders).
EDC_PRODUCTION     1: production (HTTPS only, HSTS, secure cookies; SECRET_KEY and ALLOWED_HOSTS
                   required, DEBUG refused); ``manage.py check --deploy`` is clean with it.
"""

import os
import secrets
from datetime import date
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EDC_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


# Production (EDC_PRODUCTION=1): every app server behind the proxy shares one SECRET_KEY (a key
# made per machine in var/ would sign sessions the other servers refuse) and names its hosts.
PRODUCTION = env_bool("EDC_PRODUCTION")
if PRODUCTION:
    _missing = [name for name in ("SECRET_KEY", "ALLOWED_HOSTS") if not os.environ.get(name)]
    if _missing:
        raise ImproperlyConfigured(f"EDC_PRODUCTION=1 needs {' and '.join(_missing)} set.")
    if env_bool("DEBUG"):
        raise ImproperlyConfigured("EDC_PRODUCTION=1 refuses DEBUG=1 (debug pages leak data).")

SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before WhiteNoise's: edc's runserver extends it (a failed stream resets the connection).
    "edc",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets, served locally (the docs page offline)
    "simple_history",
    # The project's apps, bottom layer first; each imports only the apps listed before it.
    "core",
    "accounts",
    "subjects",
    "eligibility",
    "randomization",
    "adverse_events",
    "treatment",
    "efficacy",
    "survival",
    "queries",
    "monitoring",
    "dashboard",
    "exports",
]

MIDDLEWARE = [
    # /healthz first: the load balancer's probe needs no host name, session, user or HTTPS.
    "edc.health.HealthCheckMiddleware",
    # Outermost of the rest: a streamed response failing mid-way is logged and its connection
    # reset, never ended as if complete (edc.streaming).
    "edc.streaming.StreamFailureMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A cookie holding a NUL is no cookie of ours: dropped before the session looks its key up.
    "edc.nul_bytes.DropNulCookiesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A NUL (%00) in the address or query string: a 400 with a sentence, before any view.
    "edc.nul_bytes.RefuseNulBytesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Activity moves the idle timeout on; a form posted after it keeps its input for the login.
    "accounts.sessions.IdleSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # A statement cancelled by statement_timeout / lock_timeout, or the database connection lost:
    # a 503 with a sentence, not a 500 (edc.urls' 400 and 500 handlers: what middlewares raise).
    "edc.middleware.DatabaseTroubleMiddleware",
]

ROOT_URLCONF = "edc.urls"
WSGI_APPLICATION = "edc.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.sessions.idle_session",  # the idle-timeout warning, the kept input
            ],
        },
    },
]

FORM_RENDERER = "core.forms.FormRenderer"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Wait for the write lock instead of failing at once when two requests write together.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

# --- Timeouts (PostgreSQL) ---------------------------------------------------------------------
# Web requests: no SQL statement runs longer than WEB_STATEMENT_TIMEOUT seconds (0: no limit), so
# one slow query or a lock held too long cannot tie up every server worker. Only the web process
# (edc/wsgi.py marks it with EDC_WEB_PROCESS=1 before the settings load: gunicorn, any WSGI
# server) gets it; migrations, management commands (seed_demo, exports to a file, backups) and the
# Celery worker (the nightly sweep of every edit check) legitimately run long statements.
WEB_STATEMENT_TIMEOUT = float(os.environ.get("WEB_STATEMENT_TIMEOUT", "30"))
WEB_PROCESS = env_bool("EDC_WEB_PROCESS")
# Randomization waits at most this many seconds for the subject's and the stratum's row locks,
# then answers "the randomization service is busy, try again in a moment" (SET LOCAL lock_timeout).
RANDOMIZATION_LOCK_TIMEOUT = float(os.environ.get("RANDOMIZATION_LOCK_TIMEOUT", "5"))
# The sponsor exports' biggest query (the ODM's adverse events, written by PostgreSQL) is split
# into this many queries, each read ahead by a thread on a connection of its own (1: one query on
# the request's connection). exports/background.py says when and why.
EXPORT_QUERY_THREADS = int(os.environ.get("EXPORT_QUERY_THREADS", "2"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    # A database that does not answer: fail in seconds (the health check says so), not hang.
    _db_options.setdefault("connect_timeout", int(os.environ.get("DB_CONNECT_TIMEOUT", "5")))
    if WEB_PROCESS and WEB_STATEMENT_TIMEOUT > 0:
        _db_options["options"] = f"-c statement_timeout={int(WEB_STATEMENT_TIMEOUT * 1000)}"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The table of users' roles at sites, read by the access module (core.access).
EDC_SITE_MEMBERSHIP_MODEL = "subjects.SiteMembership"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # `collectstatic` target for production
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve app static files without collectstatic (demo, tests)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "subjects:list"
LOGOUT_REDIRECT_URL = "login"
# A session ends after SESSION_IDLE_MINUTES without a request (default 30); activity moves the
# expiry on (accounts.sessions.IdleSessionMiddleware: a save at most every tenth of the timeout,
# a minute at most: the effect of SESSION_SAVE_EVERY_REQUEST without a write per request), so
# only idleness logs a user out. The pages warn before the end and offer "Stay signed in".
SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "30"))
SESSION_COOKIE_AGE = 60 * SESSION_IDLE_MINUTES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION or env_bool("SECURE_COOKIES")
CSRF_COOKIE_SECURE = PRODUCTION or env_bool("SECURE_COOKIES")

# --- Brute-force protection (accounts.lockout) -------------------------------------------------
# LOCKOUT_FAILURES wrong passwords for one username (site login, admin login and e-signature
# prompt together) within LOCKOUT_MINUTES lock the account for LOCKOUT_MINUTES; a data manager
# may unlock it earlier, with a reason (admin: security log -> "Unlock"). Every step is in the
# security log.
LOCKOUT_FAILURES = int(os.environ.get("LOCKOUT_FAILURES", "5"))
LOCKOUT_MINUTES = int(os.environ.get("LOCKOUT_MINUTES", "15"))
AUTHENTICATION_BACKENDS = [
    "accounts.lockout.LockoutBackend",  # refuses a locked account before any password check
    "django.contrib.auth.backends.ModelBackend",
]

# --- HTTPS and security headers ----------------------------------------------------------------
# Behind the TLS-terminating proxy (which must set X-Forwarded-Proto, overwriting the client's).
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Audit trail -------------------------------------------------------------------------------
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_REVERT_DISABLED = True  # history is read-only in the admin
SIMPLE_HISTORY_ENFORCE_HISTORY_MODEL_PERMISSIONS = True

# --- API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Tokens are refused while their account is locked; session last: a request neither
    # authenticates (no token, a wrong one) counts against its address's anonymous rate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.StableCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Per user (token or session): a full pull of 200,000 AEs is 200 pages of 1,000 (or one CSV).
    # Per address for the unauthenticated and wrong tokens ("anon"): counted while authenticating
    # (core.throttling), as the permission check refuses them before throttles.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_THROTTLE_USER", "10000/hour"),
        "anon": os.environ.get("API_THROTTLE_ANON", "1000/hour"),
    },
    # The client address is REMOTE_ADDR, or the last one of X-Forwarded-For that this many
    # proxies added (production: the TLS proxy): never a header the client wrote itself.
    "NUM_PROXIES": int(os.environ.get("API_TRUSTED_PROXIES", "1" if PRODUCTION else "0")),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mini-EDC sponsor API",
    "DESCRIPTION": "Read-only exports of the toripalimab + bevacizumab vs sorafenib HCC trial.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The errors every operation can answer, and what a parameter takes (core.api).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.document_errors",
    ],
}

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
# A save never waits on a broker that is down: publishing fails fast and is logged (the next
# sweep catches up).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 0, "socket_connect_timeout": 2}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The nightly sweep of every edit check (cron syntax, UTC): EDIT_CHECK_SWEEP="30 1 * * *".
EDIT_CHECK_SWEEP = os.environ.get("EDIT_CHECK_SWEEP", "0 2 * * *")
_minute, _hour, _day, _month, _weekday = EDIT_CHECK_SWEEP.split()
CELERY_BEAT_SCHEDULE = {
    "edit-check-sweep": {
        "task": "queries.sweep_study",
        "schedule": crontab(
            minute=_minute,
            hour=_hour,
            day_of_month=_day,
            month_of_year=_month,
            day_of_week=_weekday,
        ),
    }
}

# --- Edit checks -------------------------------------------------------------------------------
# Overrides of core.edit_checks.EDIT_CHECK_DEFAULTS, e.g. {"screening_max_days": 35}.
EDIT_CHECK_SETTINGS: dict = {}
# Without a broker, a changed subject's edit checks run in the process that changed it:
# "background" (default) in a thread of that process after the commit, as many subjects at a time
# as changed meanwhile (the request does not wait for them); "inline" in the request at the commit.
EDIT_CHECKS_WITHOUT_BROKER = os.environ.get("EDIT_CHECKS_WITHOUT_BROKER", "background")
if EDIT_CHECKS_WITHOUT_BROKER not in ("background", "inline"):
    raise ImproperlyConfigured('EDIT_CHECKS_WITHOUT_BROKER is "background" or "inline".')

# --- Study -------------------------------------------------------------------------------------
# The first site opened: no screening, consent, status or adverse-event date before it.
EDC_STUDY_START = date.fromisoformat(os.environ.get("EDC_STUDY_START", "2020-10-01"))
# The study identifier of the CDISC exports (STUDYID, USUBJID = study id + "-" + subject id).
EDC_STUDY_ID = os.environ.get("EDC_STUDY_ID", "TORI-BEV-HCC-3")
# The time zone of a new site (IANA name); each site keeps its own (subjects.Site.time_zone).
EDC_DEFAULT_SITE_TIME_ZONE = os.environ.get("EDC_DEFAULT_SITE_TIME_ZONE", "Asia/Shanghai")

# --- Randomization -----------------------------------------------------------------------------
# The balance report warns when a stratum has this many free slots or fewer.
RANDOMIZATION_LOW_SLOTS_WARNING = int(os.environ.get("RANDOMIZATION_LOW_SLOTS_WARNING", "20"))

# --- Monitoring: the risk-based source data verification plan (monitoring/sdv_plan.py) --------
# Records of these kinds are all verified ("app_label.model", or "app_label.model:field" for those
# where the field is true: the serious AEs); of every other kind of CRF record, a share of
# SDV_SAMPLE_PERCENT, chosen reproducibly per subject and record (no random state).
SDV_PLAN = {
    "full": [
        "subjects.subject",
        "eligibility.eligibilityassessment",
        "randomization.allocation",
        "adverse_events.adverseevent:serious",
    ],
    "sample_percent": int(os.environ.get("SDV_SAMPLE_PERCENT", "25")),
}

# --- Reference data ----------------------------------------------------------------------------
EDC_REFERENCE_DATA = os.environ.get("EDC_REFERENCE_DATA", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
