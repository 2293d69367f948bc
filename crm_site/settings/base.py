"""Settings shared by every environment.

Everything that differs between machines comes from ``DJANGO_``-prefixed
environment variables, ``DATABASE_URL`` and ``REDIS_URL``; docs/deployment.md lists them all.
"""

import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

VERSION = "1.0.0"


def env(name, default=None):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


_RATE = re.compile(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)")


def env_rate(name, default):
    """A request rate, ``<number>/<second|minute|hour|day>``: refused at start, not at every request."""
    value = os.environ.get(name, "").strip() or default
    if not _RATE.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 1200/minute (a number, then /second, /minute, /hour or /day), got {value!r}"
        )
    return value


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "crm_site.apps.CRMAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "knox",
    "import_export",
    "simple_history",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "huey.contrib.djhuey",
    "companies",
    "customers",
    "interactions",
    "opportunities",
    "tasks",
    "calendars",
    "operations",
    "webhooks",
    "notifications",
    "reminders",
    "mailgateway",
    "duplicates",
    "core",
]

# Django's model backend; the session's user is read with their preferences (core/auth.py).
# (Sessions signed in under django.contrib.auth.backends.ModelBackend sign in again once.)
# The first signs users in; Django's own stays listed so that sessions begun before keep working.
AUTHENTICATION_BACKENDS = ["core.auth.PreferencesModelBackend", "django.contrib.auth.backends.ModelBackend"]

MIDDLEWARE = [
    "core.api.request_id.RequestIDMiddleware",
    # Only with DEBUG on: the API's 400 for a host not allowed, not Django's debug page.
    "core.api.middleware.DebugAPIHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.api.middleware.RequestBodyLimitMiddleware",
    "core.api.throttling.RateLimitHeadersMiddleware",
    # django-cors-headers', reading Origin without building request.headers (core/api/middleware.py).
    "core.api.middleware.CorsMiddleware",
    # Django's session, authentication and messages middleware, passed by on bearer API requests
    # (which the token alone authenticates; see core/api/middleware.py).
    "core.api.middleware.SessionMiddleware",
    # Django's, short-cut while no URL has a language prefix (core/api/middleware.py).
    "core.api.middleware.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.api.middleware.AuthenticationMiddleware",
    # The admin's dates and times in the user's time zone (their preferences).
    "core.timezones.UserTimeZoneMiddleware",
    # Records who made each change (admin, API, imports) in the models' history.
    "simple_history.middleware.HistoryRequestMiddleware",
    "core.api.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "crm_site.urls"
WSGI_APPLICATION = "crm_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "crm_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, defaulting to an SQLite file next to manage.py.
DATABASE_URL = env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'crm.db'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
# SQLite's durability: FULL syncs the WAL at every commit, so an acknowledged
# write survives a power cut; NORMAL syncs only at checkpoints (faster writes,
# but a power cut can lose the last commits; a crash of the process loses nothing).
SQLITE_SYNCHRONOUS = (env("DJANGO_SQLITE_SYNCHRONOUS") or "FULL").strip().upper()
if SQLITE_SYNCHRONOUS not in {"FULL", "NORMAL"}:
    raise ImproperlyConfigured(
        f"DJANGO_SQLITE_SYNCHRONOUS must be FULL (the default: a committed write survives a power cut) "
        f"or NORMAL (faster writes; a power cut can lose the last ones), got {env('DJANGO_SQLITE_SYNCHRONOUS')!r}"
    )
_on_sqlite = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if _on_sqlite:
    # Django's backend, with writers queued on a file lock beside the database, which the
    # kernel hands to the next writer the moment it is let go (core/sqlite/writelock.py).
    DATABASES["default"]["ENGINE"] = "core.sqlite"
    # Covering indexes (Index(include=...)) serve PostgreSQL; SQLite builds them on their key columns,
    # which is all it can use, so Django's warning that it cannot store the rest says nothing to do.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at
    # BEGIN so a writer never fails with "database is locked" when a read lock
    # cannot be upgraded. The timeout bounds both the wait for the file lock and
    # SQLite's own busy wait (for writers outside this project, such as the sqlite3 shell).
    # Connections persist (CONN_MAX_AGE) as on PostgreSQL: opening one and running
    # the PRAGMAs below costs more than a whole primary-key read.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int("DJANGO_SQLITE_TIMEOUT", 20),
        "transaction_mode": "IMMEDIATE",
        "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={SQLITE_SYNCHRONOUS}; PRAGMA foreign_keys=ON;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env("DJANGO_LANGUAGE_CODE", "en")
# The country whose numbering a phone number without "+" follows (ISO 3166 code, core/phones.py):
# China in a Chinese deployment, the United States otherwise.
CRM_PHONE_REGION = (env("CRM_PHONE_REGION") or ("CN" if LANGUAGE_CODE.lower() == "zh-hans" else "US")).upper()
# The currency of every amount (ISO 4217 code, shown with its symbol by core/money.py):
# yuan in a Chinese deployment, US dollars otherwise.
CRM_CURRENCY = (env("CRM_CURRENCY") or ("CNY" if LANGUAGE_CODE.lower() == "zh-hans" else "USD")).strip().upper()
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Amounts with thousands separators in every language (crm_site/formats/<locale>/formats.py).
FORMAT_MODULE_PATH = ["crm_site.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")

# Requests whose declared body is larger than this get a 413 before any view runs.
MAX_REQUEST_BODY_BYTES = env_int("DJANGO_MAX_REQUEST_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# Bounds on the work one imported file may cause (the admin's imports and import_customers):
# a file beyond any of them is refused whole. See docs/deployment.md.
IMPORT_MAX_BYTES = env_int("DJANGO_IMPORT_MAX_BYTES", 1024 * 1024)
IMPORT_MAX_ROWS = env_int("DJANGO_IMPORT_MAX_ROWS", 500)
IMPORT_MAX_CELL_CHARS = env_int("DJANGO_IMPORT_MAX_CELL_CHARS", 32767)
IMPORT_MAX_UNZIPPED_BYTES = env_int("DJANGO_IMPORT_MAX_UNZIPPED_BYTES", 16 * 1024 * 1024)
# Admin uploads awaiting confirmation of their preview; abandoned ones are deleted after this many hours.
IMPORT_UPLOAD_DIR = Path(env("DJANGO_IMPORT_UPLOAD_DIR") or Path(tempfile.gettempdir()) / "crm-import-uploads")
IMPORT_UPLOAD_MAX_AGE_HOURS = env_int("DJANGO_IMPORT_UPLOAD_MAX_AGE_HOURS", 3)

APPEND_SLASH = False
CSRF_FAILURE_VIEW = "core.api.exceptions.csrf_failure"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer first: its WWW-Authenticate header turns "no credentials" into a 401.
        "core.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Signed in with a role (core.access): read-only users read, reps and managers write.
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.HasRole"],
    "DEFAULT_RENDERER_CLASSES": [
        "core.api.renderers.EnvelopeJSONRenderer",
        "core.api.renderers.EnvelopeBrowsableAPIRenderer",
    ],
    # JSON only: any other body is a 415 (the browsable API offers its raw JSON form).
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.SafeJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["core.api.filters.FilterBackend"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.api.negotiation.JSONFirstNegotiation",
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.EnvelopePagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exceptions.envelope_exception_handler",
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [
        "core.api.throttling.UserThrottle",
        "core.api.throttling.AnonThrottle",
    ],
    # Requests per client: "<n>/<second|minute|hour|day>". "login" applies twice to
    # POST /api/auth/token, per client address and per username (brute force).
    "DEFAULT_THROTTLE_RATES": {
        "user": env_rate("DJANGO_THROTTLE_USER", "1200/minute"),
        "anon": env_rate("DJANGO_THROTTLE_ANON", "120/minute"),
        "login": env_rate("DJANGO_THROTTLE_LOGIN", "10/minute"),
    },
    # Proxies in front of the app: the client address is taken from X-Forwarded-For
    # only past that many hops; 0 uses the socket address (nothing to spoof).
    "NUM_PROXIES": env_int("DJANGO_NUM_PROXIES", 0),
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.EnvelopeAutoSchema",
}

# Caches hold the throttle counters, so every worker process must see the same
# one: Redis when REDIS_URL is set, else a table in the database (created by the
# core app's migrations). A per-process memory cache would limit nothing.
REDIS_URL = env("REDIS_URL")
CACHE_KEY_PREFIX = env("DJANGO_CACHE_KEY_PREFIX", "crm")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "crm_cache",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# The job queue (huey; see docs/deployment.md): ``manage.py worker`` runs the jobs.
# Without REDIS_URL the queue is an SQLite file beside the database (no extra
# service); with it, Redis, which several workers on several machines share.
# Web processes only enqueue, so they and the workers must agree on these.
QUEUE_NAME = env("CRM_QUEUE_NAME", "crm")
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": QUEUE_NAME,
        "url": REDIS_URL,
    }
else:
    _sqlite_dir = (
        Path(DATABASES["default"]["NAME"]).parent
        if _on_sqlite and str(DATABASES["default"]["NAME"]) != ":memory:"
        else BASE_DIR
    )
    HUEY = {
        "huey_class": "core.queue.EmbeddedHuey",
        "name": QUEUE_NAME,
        "filename": env("CRM_QUEUE_FILE") or str(_sqlite_dir / "crm-queue.sqlite3"),
    }
HUEY.update(
    {
        # Results are not read back by anyone: jobs write what they produce to the database.
        "results": False,
        "utc": True,
        # Jobs run in the worker, also with DEBUG on (huey's Django default would run them inline).
        "immediate": env_bool("CRM_QUEUE_IMMEDIATE", False),
        # An idle worker looks at the queue at least once a second.
        "consumer": {"workers": env_int("CRM_WORKER_THREADS", 2), "worker_type": "thread", "max_delay": 1.0},
    }
)
# Event log: how long events stay readable in GET /api/events before the purge job drops them.
EVENT_RETENTION_DAYS = env_int("CRM_EVENT_RETENTION_DAYS", 30)


def env_stage_days(name, default):
    """``lead=14,proposal=10,negotiation=7``: days per open stage; stages left out keep their default."""
    value = env(name)
    days = dict(default)
    if not value:
        return days
    for item in value.split(","):
        stage, _sep, number = item.partition("=")
        stage, number = stage.strip(), number.strip()
        if stage not in default or not number.isdecimal() or int(number) < 1:
            raise ImproperlyConfigured(
                f"{name}: expected stage=days pairs for {', '.join(default)} (days at least 1), got {item!r}"
            )
        days[stage] = int(number)
    return days


# Follow-ups (GET /api/reports/follow-ups, "My day"): an open deal with no interaction with its
# customer, no task on it done or added and no change of stage for more days than its stage allows is stale.
CRM_STALE_DAYS = env_stage_days("CRM_STALE_DAYS", {"lead": 14, "proposal": 10, "negotiation": 7})

# Webhooks (docs/webhooks.md). Endpoints on private, loopback or link-local addresses are
# refused unless allowed, so that the CRM cannot be used to probe the internal network.
WEBHOOKS_ALLOW_PRIVATE = env_bool("DJANGO_WEBHOOKS_ALLOW_PRIVATE", False)
# Seconds to connect and to wait for the answer: a slow receiver must not hold a worker.
WEBHOOKS_CONNECT_TIMEOUT = env_int("DJANGO_WEBHOOKS_CONNECT_TIMEOUT", 3)
WEBHOOKS_READ_TIMEOUT = env_int("DJANGO_WEBHOOKS_READ_TIMEOUT", 10)
# Characters of a receiver's answer kept in the delivery log.
WEBHOOKS_RESPONSE_BODY_LIMIT = env_int("DJANGO_WEBHOOKS_RESPONSE_BODY_LIMIT", 2000)
# An endpoint whose deliveries all failed for this many days is disabled.
WEBHOOKS_DISABLE_AFTER_DAYS = env_int("DJANGO_WEBHOOKS_DISABLE_AFTER_DAYS", 3)
# After a secret rotation, the old secret still signs (beside the new one) for this many hours.
WEBHOOKS_SECRET_ROTATION_HOURS = env_int("DJANGO_WEBHOOKS_SECRET_ROTATION_HOURS", 24)

# Email out (reminders, digests): Django's SMTP backend when DJANGO_EMAIL_HOST is set, else
# the console backend, which prints each message (a development run needs no mail server).
EMAIL_HOST = env("DJANGO_EMAIL_HOST", "")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 587 if env_bool("DJANGO_EMAIL_USE_TLS", False) else 25)
EMAIL_HOST_USER = env("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
# Seconds to wait for the mail server: a stuck one must not hold a worker.
EMAIL_TIMEOUT = env_int("DJANGO_EMAIL_TIMEOUT", 30)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", "CRM <crm@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Email in (manage.py run_mail_gateway): each user's private address is <token>@this domain;
# empty turns the gateway off. Larger messages are refused at the SMTP level (552).
MAIL_GATEWAY_DOMAIN = env("DJANGO_MAIL_GATEWAY_DOMAIN", "").strip()
MAIL_GATEWAY_MAX_BYTES = env_int("DJANGO_MAIL_GATEWAY_MAX_BYTES", 10 * 1024 * 1024)
# The morning digest of the day's and overdue tasks goes out from this hour, in each user's time zone.
CRM_DIGEST_HOUR = env_int("CRM_DIGEST_HOUR", 7)

# The OpenAPI contract (/api/schema/, /api/docs/, /api/redoc/), see docs/api.md.
SPECTACULAR_SETTINGS = {
    "TITLE": "CRM API",
    "DESCRIPTION": (
        "Customers, interactions and opportunities. Every answer is an envelope: "
        '`{"success": true, "data": ...}` (lists add `meta` with paging), or '
        '`{"success": false, "error": {"code", "message", "fields"}}`. See docs/api.md.'
    ),
    "VERSION": VERSION,
    "SCHEMA_PATH_PREFIX": r"/api",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema describes the API, not its data: anyone may read it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # The envelope's "success" is true on success and false on errors.
    "ENUM_NAME_OVERRIDES": {
        "SuccessTrueEnum": [(True, True)],
        "SuccessFalseEnum": [(False, False)],
        "StatusEnum": "customers.models.Customer.Status",
        "DeliveryStatusEnum": "webhooks.models.Delivery.Status",
        # The task kinds had the name first; the changesets' get their own.
        "KindEnum": "tasks.models.Task.Kind",
        "ChangesetKindEnum": "core.changesets.Changeset.Kind",
        "ChangesetStatusEnum": "core.changesets.Changeset.Status",
        "ChangesetOpEnum": "core.changesets.ChangesetRow.Op",
        "DuplicateKindEnum": "duplicates.models.Kind",
        "DuplicateStatusEnum": "duplicates.models.DuplicateCandidate.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.strip_trailing_slashes",
        "core.api.schema.optional_query_parameters_may_be_empty",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": timedelta(hours=env_int("DJANGO_TOKEN_TTL_HOURS", 10)),
    "TOKEN_LIMIT_PER_USER": None,
    "AUTO_REFRESH": False,
}

# CORS: only the API, only the origins the operator lists.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOWED_ORIGINS = env_list("DJANGO_CORS_ALLOWED_ORIGINS")
CORS_EXPOSE_HEADERS = ["ETag", "Retry-After", "X-Request-ID", "Idempotent-Replayed", "RateLimit-Policy", "RateLimit"]
# Browsers may send the safe-write headers (docs/api.md) across origins too.
CORS_ALLOW_HEADERS = [*cors_default_headers, "idempotency-key", "if-match", "if-none-match", "x-request-id"]

# Admin import/export: adding records needs the "add" permission, exporting needs "view".
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_USE_TRANSACTIONS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "bare": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "access": {"class": "logging.StreamHandler", "formatter": "bare"},
    },
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # One JSON line per request (core.api.request_id); DJANGO_ACCESS_LOG=false silences it.
        "crm.access": {
            "handlers": ["access"],
            "level": "INFO" if env_bool("DJANGO_ACCESS_LOG", True) else "WARNING",
            "propagate": False,
        },
        # Client errors are answered in the envelope; they are not server warnings.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "INFO"},
    },
}
