"""The one settings module. Everything that differs between machines comes from the environment.

Two shapes:
- EMBEDDED=true (what `make run` sets): SQLite under var/, kombu's filesystem broker, an in-process
  cache, plain HTTP on localhost. Nothing to install but Python.
- otherwise (tests, production): PostgreSQL from DATABASE_URL, Redis from REDIS_URL, and the
  production-safe defaults (no DEBUG, HTTPS only, a SECRET_KEY that must be set).
"""

import ipaddress
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from backend.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

EMBEDDED = env_bool("EMBEDDED", False)
DEBUG = env_bool("DEBUG", False)


def _embedded_secret_key() -> str:
    # The demo keeps its key across restarts so demo sign-ins survive a `make run` restart.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# Outside the embedded demo there is no fallback: a missing SECRET_KEY stops the process.
SECRET_KEY = env_str("SECRET_KEY", _embedded_secret_key()) if EMBEDDED else env_str("SECRET_KEY")


def _embedded_field_keys() -> list[str]:
    from cryptography.fernet import Fernet

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "field_encryption_key"
    if not path.exists():
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return [path.read_text().strip()]


# Fernet keys for notes at rest, newest first (backend/encryption.py). Required outside the demo.
FIELD_ENCRYPTION_KEYS = (
    env_list("FIELD_ENCRYPTION_KEYS", _embedded_field_keys()) if EMBEDDED else env_list("FIELD_ENCRYPTION_KEYS", [])
)
if not EMBEDDED and not FIELD_ENCRYPTION_KEYS:
    env_str("FIELD_ENCRYPTION_KEYS")  # raises with the variable's name

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"] if EMBEDDED else [])
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000" if EMBEDDED else "")
# Namespace of the FHIR export's own code systems and identifiers (journal/fhir.py).
FHIR_CANONICAL_BASE = env_str("FHIR_CANONICAL_BASE", "https://interlude.example/fhir").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL] if PUBLIC_BASE_URL else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_htmx",
    "backend",
    "accounts",
    "journal",
    "reminders",
    "dashboard",
]

MIDDLEWARE = [
    "backend.middleware.RequestIdMiddleware",
    "backend.middleware.BodySizeLimitMiddleware",
    "backend.middleware.ErrorShapeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "backend.middleware.NotStoredMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "dashboard.middleware.IdleTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "backend.middleware.AppVersionMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"
ASGI_APPLICATION = "backend.asgi.application"
AUTH_USER_MODEL = "accounts.User"

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
if EMBEDDED and not env_str("DATABASE_URL", ""):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "interlude.sqlite3"),
            # web, worker and beat share the file: WAL lets readers run beside a writer, IMMEDIATE
            # takes the write lock up front so two writers queue instead of failing to upgrade.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
else:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL"), conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 3)
    # Every query the app makes is short and about one patient or one care team, yet PostgreSQL
    # plans a parallel worker for some of them (a JSON array expansion looks like 100 rows per
    # entry to it), and starting one costs ~5 ms: more than the query. Streaming exports read
    # through a cursor, which never runs in parallel anyway. 0 = no parallel workers.
    _parallel = env_int("DB_MAX_PARALLEL_WORKERS_PER_GATHER", 0)
    DATABASES["default"]["OPTIONS"]["options"] = f"-c max_parallel_workers_per_gather={_parallel}"
    # Server-side parameter binding lets psycopg prepare a statement the fifth time a connection
    # runs it: the journal's writes run the same few statements all day, and parsing and planning
    # them every time was a third of PostgreSQL's CPU per entry. Off (DB_PREPARED_STATEMENTS=false)
    # behind a transaction-pooling proxy such as PgBouncer < 1.21, which cannot keep them.
    if env_bool("DB_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, throttles and the Celery broker ---------------------------------------------
REDIS_URL = "" if EMBEDDED else env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Short timeouts: throttles and caching fail open, so a dead Redis must cost milliseconds, not seconds.
REDIS_SOCKET_TIMEOUT = float(env_str("REDIS_SOCKET_TIMEOUT", "0.25"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "interlude",
            "OPTIONS": {
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ------------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_timeout": REDIS_SOCKET_TIMEOUT * 4,
        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT * 4,
        # Tasks are short; the database (not this timeout) decides whether work was done.
        "visibility_timeout": 3600,
    }
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing happens after commit from web requests: never retry there (the sweeper re-publishes).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("prompts", Exchange("prompts"), routing_key="prompts"),
    # Urgent alert notifications never wait behind a backlog of prompts.
    Queue("alerts_urgent", Exchange("alerts_urgent"), routing_key="alerts_urgent"),
)
CELERY_TASK_ROUTES = {
    "reminders.tasks.deliver_prompts": {"queue": "prompts"},
    # Its sweeper rides the urgent queue; the sends default to `default`, and urgent alerts' sends
    # are published to alerts_urgent by name (reminders.tasks.alert_notifications_queue).
    "reminders.tasks.sweep_due_alert_notifications": {"queue": "alerts_urgent"},
    "reminders.tasks.send_alert_notifications": {"queue": "default"},
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env_list(
    "PASSWORD_HASHERS",
    [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)
SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY", SECRET_KEY),
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=30),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "LEEWAY": 0,
    "UPDATE_LAST_LOGIN": False,
}
# A rotated-away refresh token presented again within this many seconds gets the same new pair.
REFRESH_REUSE_GRACE_SECONDS = 10
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
ENROLLMENT_CODE_TTL = timedelta(days=7)
# Phone apps below this version get 426 so old apps can be retired.
MIN_APP_VERSION = env_str("MIN_APP_VERSION", "0.0.0")
LOGIN_URL = "/dashboard/login/"
# Clinicians sign in to the dashboard with a password and a TOTP code, and must set up an
# authenticator app at their first sign-in; the API then wants the same code. Off in the embedded
# demo so `make run` signs in with the printed passwords. With it off, a clinician who has set up
# two-factor is still asked for the code: set up means used.
DASHBOARD_REQUIRE_2FA = env_bool("DASHBOARD_REQUIRE_2FA", not EMBEDDED)
# A dashboard or admin session unused this long is signed out (dashboard.middleware).
DASHBOARD_IDLE_TIMEOUT_SECONDS = env_int("DASHBOARD_IDLE_TIMEOUT_SECONDS", 30 * 60)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Interlude")  # the name shown in the authenticator app
# The admin may remove a lost phone's device (the clinician sets up a new one at the next sign-in),
# but never read a device's key or QR code.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- API ---------------------------------------------------------------------------------------
MAX_REQUEST_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SignInJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["backend.api.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["backend.api.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "backend.api.pagination.CursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["backend.api.throttles.UserWriteThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user_write": env_str("THROTTLE_USER_WRITE", "300/min"),
        "enrollment": env_str("THROTTLE_ENROLLMENT", "20/min"),
        "password_reset": env_str("THROTTLE_PASSWORD_RESET", "5/hour"),
    },
    "EXCEPTION_HANDLER": "backend.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "backend.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Interlude API",
    "DESCRIPTION": "Between-sessions journal for addiction care: the phone app's and the dashboard's API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "SubstanceEnum": "accounts.models.SUBSTANCES",
        "PatientStatusEnum": "accounts.models.PatientStatus",
        "SyncStatusEnum": "journal.serializers.entries.SYNC_STATUSES",
        "EntryKindEnum": "journal.models.EntryKind",
        "SessionKindEnum": "journal.models.SessionKind",
        "KetamineRouteEnum": "journal.models.KetamineRoute",
        "PromptKindEnum": "reminders.models.PromptKind",
        "ScheduleKindEnum": "reminders.models.ScheduleKind",
        "PromptStatusEnum": "reminders.models.PromptStatus",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Reminders ----------------------------------------------------------------------------------
# Push goes through FCM HTTP v1. Both Google hosts are configurable so tests (and proxies) can
# point them at a loopback server; without a project and credentials push is off and reminders
# fall back to email where the clinic allows it.
FCM_PROJECT_ID = env_str("FCM_PROJECT_ID", "")
FCM_CREDENTIALS_FILE = env_str("FCM_CREDENTIALS_FILE", "")
FCM_ENDPOINT = env_str("FCM_ENDPOINT", "https://fcm.googleapis.com")
FCM_TOKEN_URI = env_str("FCM_TOKEN_URI", "")  # overrides the service account's token_uri when set
FCM_TIMEOUT_SECONDS = float(env_str("FCM_TIMEOUT_SECONDS", "10"))
# A sender holds a prompt this long; a worker that dies mid-send loses it to the next sweep.
PROMPT_SEND_LEASE_SECONDS = env_int("PROMPT_SEND_LEASE_SECONDS", 60)
# A published prompt waits this long for a worker before a sweep publishes it again (a backlog of
# thousands drains for minutes; only a message the broker lost waits the whole lease).
PROMPT_PUBLISH_LEASE_SECONDS = env_int("PROMPT_PUBLISH_LEASE_SECONDS", 600)
PROMPT_SWEEP_BATCH = env_int("PROMPT_SWEEP_BATCH", 1000)
PROMPT_PLAN_DAYS = 2  # prompts exist as rows this many journal days ahead

# --- Email ---------------------------------------------------------------------------------------
_email = dj_email_url.parse(env_str("EMAIL_URL", "console://" if EMBEDDED else "smtp://localhost:25"))
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"]
EMAIL_PORT = _email["EMAIL_PORT"]
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = 10
# A neutral sender: the address a patient's family may see must not name an addiction service.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Interlude <no-reply@localhost>")

# --- Security ------------------------------------------------------------------------------------
_https = not EMBEDDED
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _https)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _https else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 8
# Page scripts take the CSRF token from the page (base.html's hx-headers), never from the cookie.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# No inline script anywhere in the dashboard (data goes through json_script, which is not run);
# inline styles are allowed because plotly.js adds <style> elements as it draws.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
    # drf-spectacular's Swagger UI starts itself with an inline <script>; it shows only the public schema.
    "EXCLUDE_URL_PREFIXES": ["/api/docs/"],
}
# Number of trusted reverse proxies in front of the app (for the client address in the access log
# and /metrics).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Metrics (SPEC §13; backend/metrics.py) -------------------------------------------------------
# GET /metrics answers `Authorization: Bearer <METRICS_TOKEN>` (unset: no token is accepted) or a
# client inside METRICS_ALLOWED_IPS (addresses or networks, the client address as TRUSTED_PROXY_COUNT
# reads it); anyone else gets 404.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 32 characters: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
for _network in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_network!r} is not an address or network.") from None
# Prometheus scrapes the app over the private network in plain HTTP, past the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
# Set (by the image) for gunicorn's several worker processes: each writes its request histogram to
# files here and a scrape sums them. prometheus_client reads the variable itself at import; this
# copy only lets the app check it. The directory must exist and be emptied when gunicorn starts.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is not a directory.")

# --- I18N and time -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
if not STATIC_ROOT.exists():
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic fills it in images; elsewhere it only has to exist
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = EMBEDDED or DEBUG
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.staticfiles.PlotlyFinder",  # plotly.min.js from the plotly package (no CDN)
]

# --- Logging: JSON lines on stdout, with the request id; never request bodies -------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "backend.jsonlog.RequestIdFilter"}},
    "formatters": {"json": {"()": "backend.jsonlog.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # django.request would log 4xx/5xx with the request object attached; our own request line
        # carries what matters and the JSON formatter never serialises a request.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}
