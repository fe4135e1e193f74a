"""Django settings, all driven by environment variables (django-environ).

Every value has a local default so ``make run`` works on a fresh machine;
production overrides them through the environment or a ``.env`` file.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from voiceproj.secret_key import validated_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

# Nothing phones home: LangGraph/LangChain tracing stays off unless an operator
# explicitly turns it on in the environment.
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Off unless asked for: a server started without settings must never run with
# the debug pages and the development key. `make run` and `make test` ask for it.
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = validated_secret_key(env.str("SECRET_KEY", default=""), debug=DEBUG)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
# Behind a TLS-terminating proxy, trust its X-Forwarded-Proto/-Host so the API's
# ws_url and absolute links carry the public scheme (wss://) and host.
if env.bool("TRUST_PROXY_HEADERS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
# How many proxies in front of the web process append to X-Forwarded-For. The
# client's address, which every rate limit keys on, is the entry that many
# places from the right; the entries left of it are whatever the client sent.
# 0 (no proxy): the socket's peer address, and X-Forwarded-For is ignored.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
NINJA_NUM_PROXIES = NUM_PROXIES
ALLAUTH_TRUSTED_PROXY_COUNT = NUM_PROXIES

# Production transport security (docs/security.md), on whenever DEBUG is off;
# each can be turned off where a proxy already does it. HSTS starts at one year,
# the value browsers' preload lists ask for.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Load balancers' health probes and Prometheus reach the process itself over
# the private network, in plain HTTP, not through the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^api/health/ready$", r"^metrics$"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "corsheaders",
    "csp",
    "channels",
    # Serves the Swagger UI of /api/docs from local static files, not a CDN (works offline).
    "ninja",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework_simplejwt.token_blacklist",
    "accounts",
    "agents",
    "calls",
    "calls.scenarios",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "voiceproj.middleware.api_method_not_allowed_as_json",
]

# Content-Security-Policy (django-csp): pages run only our own scripts, styles
# and workers, and talk only to this origin (the call socket included), so an
# injected <script> or inline handler does nothing. Audio is played from blob:
# URLs by the call page; the QR code of two-factor setup is a data: image.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "media-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# The largest body anyone needs is an agent (about 25 KB of prompt and
# intents); 256 KiB leaves room and stops a client from making a web process
# parse megabytes. A larger body answers 413 (the API) or 400 (a form).
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

ROOT_URLCONF = "voiceproj.urls"
ASGI_APPLICATION = "voiceproj.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
# How long Celery pool processes and the calls' database threads keep their
# connection between uses (voiceproj/dbconn.py); 0 reconnects every time.
DB_KEEP_CONNECTIONS_S = env.int("DB_KEEP_CONNECTIONS_S", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Bounded waits, so an unreachable or locked database costs a caller a
    # service_unavailable error within seconds, never a call that hangs:
    # connect in 5 s; wait 10 s at most for a row lock; and end a transaction
    # left idle for 60 s by a client that vanished without closing its
    # socket, whose locks would otherwise block every write to that call.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    DATABASES["default"]["OPTIONS"].setdefault(
        "options", "-c lock_timeout=10000 -c idle_in_transaction_session_timeout=60000"
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default is written by daphne and four worker processes at
    # once. WAL lets readers run beside the one writer; IMMEDIATE takes the
    # write lock when a transaction starts, so two writers queue on the busy
    # timeout instead of one failing with "database is locked" when it tries
    # to upgrade a read lock; 20 s outlasts any write burst of a busy box.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        transaction_mode="IMMEDIATE",
        timeout=env.float("SQLITE_BUSY_TIMEOUT_S", default=20.0),
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# django-allauth: username or email login.
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# --- Email verification and two-factor authentication (docs/web.md) ----------
# A production server (DEBUG off) lets nobody log in with an address they have
# not confirmed; a development box often has no mail server, so there it is
# optional. ACCOUNT_EMAIL_VERIFICATION=mandatory|optional|none overrides both.
ACCOUNT_EMAIL_VERIFICATION = env.str(
    "ACCOUNT_EMAIL_VERIFICATION", default="optional" if DEBUG else "mandatory"
)
# allauth.mfa: an authenticator app (TOTP) with one-time recovery codes, on the
# web login, the admin's (voiceproj/urls.py) and the API's (accounts/mfa.py).
# No security keys (WebAuthn) yet: TOTP works with any authenticator app.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# ----------------------------------------------------------------------------
ACCOUNT_UNIQUE_EMAIL = True
LOGIN_REDIRECT_URL = "/dashboard/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="voice@localhost")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    # Every token carries a hash of the password hash: a password change or
    # reset revokes all tokens minted before it (accounts/tokens.py checks it).
    "CHECK_REVOKE_TOKEN": True,
}
# What a monitoring system presents (Authorization: Bearer ...) to read
# /api/health/ready and /metrics; staff users may read them with their own
# login. Empty: staff only. Generate it as SECRET_KEY is (docs/security.md).
MONITORING_TOKEN = env.str("MONITORING_TOKEN", default="")
# Password guessing on the API's unauthenticated auth endpoints (login, register,
# refresh, logout), per client address; a person never needs more.
API_AUTH_RATE = env.str("API_AUTH_RATE", default="20/m")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Call recordings (calls/recording.py, docs/recordings.md) ------------------
# Uploaded and recorded files. Nothing under it is served by URL: a recording
# is only ever answered by its owner-checked routes.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
# Where a call's recording grows while the call runs: a local disk of the web
# process that carries the call. The finished file goes to the "recordings"
# storage below when the call's connection ends.
RECORDING_SPOOL_DIR = Path(env.str("RECORDING_SPOOL_DIR", default=str(MEDIA_ROOT / "spool")))
# Recordings older than this many days are deleted (a beat task, hourly); 0 keeps them.
RECORDING_RETENTION_DAYS = env.int("RECORDING_RETENTION_DAYS", default=30)
if RECORDING_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("RECORDING_RETENTION_DAYS must be 0 (keep) or more days.")
# Where finished recordings are kept: "local" (files under MEDIA_ROOT/recordings)
# or "s3" (any S3-compatible bucket through django-storages, installed with the
# `s3` extra: pip install '.[s3]').
RECORDING_STORAGE = env.str("RECORDING_STORAGE", default="local")
if RECORDING_STORAGE == "local":
    RECORDINGS_BACKEND: dict[str, object] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # No base_url: the files are private to their owners.
        "OPTIONS": {"location": MEDIA_ROOT / "recordings", "base_url": None},
    }
elif RECORDING_STORAGE == "s3":
    RECORDINGS_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("RECORDING_S3_BUCKET"),
            "endpoint_url": env.str("RECORDING_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("RECORDING_S3_REGION", default="") or None,
            "access_key": env.str("RECORDING_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("RECORDING_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("RECORDING_S3_PREFIX", default="recordings"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    raise ImproperlyConfigured(f"RECORDING_STORAGE must be local or s3, not {RECORDING_STORAGE!r}")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "recordings": RECORDINGS_BACKEND,
}

# --- Redis, Channels, Celery -------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

# The cache holds every rate-limit budget (the API's auth limit, allauth's
# login limits, the admin login's) and short-lived security state, so it must
# be one for all web processes: Redis by default, under its own key prefix.
# A Redis outage must not turn a login into a 500, so cache errors are logged
# and ignored (the limits open for that time; every call fails anyway).
# CACHE_URL overrides it (e.g. locmemcache:// for one process without Redis).
if "CACHE_URL" in os.environ:
    CACHES = {"default": env.cache_url("CACHE_URL")}
else:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "voice-cache",
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "voiceproj.channel_layer.ResilientRedisChannelLayer",
        "CONFIG": {
            # A Redis that does not accept a connection within 3 s is down for the
            # caller's purposes: fail fast; voiceproj/channel_layer.py retries.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 3}],
        },
    }
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = False

# --- Voice pipeline ----------------------------------------------------------
VOICE_STT = env.str("VOICE_STT", default="local")
VOICE_LLM = env.str("VOICE_LLM", default="local")
VOICE_TTS = env.str("VOICE_TTS", default="local")
# VOICE_LLM=instant (benchmark instrument): pause per streamed token. 0 measures
# the platform alone; 10 is SmolLM2-135M's pace on 2 cores (about 100 tokens/s).
INSTANT_TOKEN_MS = env.float("INSTANT_TOKEN_MS", default=0.0)

STT_MODEL = env.str("STT_MODEL", default="")
LLM_MODEL_PATH = env.str("LLM_MODEL_PATH", default="")
# How VOICE_LLM=local labels the caller's intent: "embedding" compares the
# words with each intent's examples as all-MiniLM-L6-v2 sentence embeddings
# (workers.engines.intent_embedding: 0.92 typed, 0.85 spoken on
# bench/quality.py's held-out split, 6 ms); "llm" scores the labels with
# SmolLM2-135M after a few-shot prompt (0.86 and 0.71, 60-200 ms beside the
# responder). docs/engines.md has the figures.
CLASSIFIER_LOCAL = env.str("CLASSIFIER_LOCAL", default="embedding")
if CLASSIFIER_LOCAL not in ("embedding", "llm"):
    raise ImproperlyConfigured('CLASSIFIER_LOCAL must be "embedding" or "llm".')
TTS_VOICE_DIR = env.str("TTS_VOICE_DIR", default="")

DEEPGRAM_API_KEY = env.str("DEEPGRAM_API_KEY", default="")
DEEPGRAM_BASE_URL = env.str("DEEPGRAM_BASE_URL", default="")
OLLAMA_HOST = env.str("OLLAMA_HOST", default="http://127.0.0.1:11434")
OLLAMA_KEEP_ALIVE = env.str("OLLAMA_KEEP_ALIVE", default="30m")
CARTESIA_API_KEY = env.str("CARTESIA_API_KEY", default="")
CARTESIA_BASE_URL = env.str("CARTESIA_BASE_URL", default="")
ENGINE_TIMEOUT_S = env.float("ENGINE_TIMEOUT_S", default=30.0)
DEEPGRAM_MODEL = env.str("DEEPGRAM_MODEL", default="nova-3")
# Ollama has no auth; a key is sent as a Bearer token to proxies / ollama.com.
OLLAMA_API_KEY = env.str("OLLAMA_API_KEY", default="")
CARTESIA_MODEL = env.str("CARTESIA_MODEL", default="sonic-3")
# Used for agents whose voice is a local (Piper) name rather than a Cartesia id.
CARTESIA_VOICE_ID = env.str("CARTESIA_VOICE_ID", default="")
# CPU threads for faster-whisper. 2 suits one worker per stage on a small host;
# raise it where a host runs few workers on many cores.
ENGINE_THREADS = env.int("ENGINE_THREADS", default=2)
# faster-whisper's beam width; 1 (greedy) is fastest, see docs/engines.md for
# what a wider beam bought on bench/quality.py.
STT_BEAM_SIZE = env.int("STT_BEAM_SIZE", default=1)
# Whether faster-whisper gets the agent's name and examples as hotwords
# (Deepgram always gets them as keyterms). Off: on generic speech they raised
# WER (docs/engines.md); turn on for agents whose callers say rare names.
STT_LOCAL_HINTS = env.bool("STT_LOCAL_HINTS", default=False)
# The audio faster-whisper's encoder sees at a time, in seconds; Whisper pads
# every window to 30 s. A 10 s window decoded bench/quality.py's clips 2.4
# times faster with the same WER, but on utterances as the endpointer cuts
# them (250 ms after the speech) it misheard more (docs/engines.md), so the
# default stays Whisper's own. Utterances within 2 s of it get the 30 s.
STT_LOCAL_WINDOW_S = env.int("STT_LOCAL_WINDOW_S", default=30)
if not 1 <= STT_LOCAL_WINDOW_S <= 30:
    raise ImproperlyConfigured("STT_LOCAL_WINDOW_S must be 1 to 30 (seconds).")
# CPU threads for each llama.cpp model. The classify and respond workers run
# their models at the same time (speculative reply), so each gets a quarter of
# the cores. On 2 cores (bench/pipeline.py, 8 text turns) 1 thread each gave
# the intent in 0.6 s p50 / 3-4 s p95 and first audio in 1.0-1.6 s p50; 2
# threads each: 1.5 s / 8 s and 2.9 s.
LLM_THREADS = env.int("LLM_THREADS", default=max(1, (os.cpu_count() or 2) // 4))
# llama.cpp's penalty on tokens the reply already used (1.0: none). SmolLM2
# without it looped ("You are a helpful voice assistant. You are a helpful
# ...") in 18 % of bench/answers.py's dev replies and recited its prompt in
# 14 %; with 1.15: 2 % and 8 %, at the same relevance (docs/engines.md).
LLM_REPEAT_PENALTY = env.float("LLM_REPEAT_PENALTY", default=1.15)
if not 1.0 <= LLM_REPEAT_PENALTY <= 2.0:
    raise ImproperlyConfigured("LLM_REPEAT_PENALTY must be 1.0 (none) to 2.0.")

# --- Agent tools (workers/tools, docs/tools.md, docs/security.md) ---------------
# Hosts an agent's HTTP tools may reach although they resolve to a loopback,
# private, link-local or reserved address (an operator's own intranet service).
# Comma-separated host names exactly as written in the tool URLs, e.g.
# "crm.internal,127.0.0.1". Empty: only public addresses are reachable.
TOOLS_ALLOWED_HOSTS = [h.lower() for h in env.list("TOOLS_ALLOWED_HOSTS", default=[])]

# --- WebSocket consumer (calls.consumers) -------------------------------------
# Input audio: PCM16 mono at VOICE_INPUT_SAMPLE_RATE unless the client's `start`
# names another of the allowed rates; VAD and STT always see 16 kHz.
VOICE_INPUT_SAMPLE_RATE = env.int("VOICE_INPUT_SAMPLE_RATE", default=16000)
# Piper's en_US-joe-medium speaks at 22050 Hz; announced in `ready`.
VOICE_OUTPUT_SAMPLE_RATE = env.int("VOICE_OUTPUT_SAMPLE_RATE", default=22050)
# webrtcvad 0 (lenient) .. 3 (strict); 2 keeps breath and fan noise out on laptop mics.
VOICE_VAD_AGGRESSIVENESS = env.int("VOICE_VAD_AGGRESSIVENESS", default=2)
# Voiced audio needed before an utterance starts: long enough to ignore a click.
VOICE_VAD_START_MS = env.int("VOICE_VAD_START_MS", default=150)
# Trailing silence that ends an utterance: shorter cuts people off mid-sentence.
VOICE_VAD_SILENCE_MS = env.int("VOICE_VAD_SILENCE_MS", default=600)
# After this much of that silence the utterance so far is already sent to the
# stt queue (workers.stt.transcribe_early): by the time the silence is complete
# the transcript is mostly done. 250 ms is past the gaps between words, so a
# caller who goes on costs an extra STT run only at a real pause. 0, or not
# below VOICE_VAD_SILENCE_MS: off.
VOICE_STT_EARLY_MS = env.int("VOICE_STT_EARLY_MS", default=250)
if VOICE_STT_EARLY_MS < 0:
    raise ImproperlyConfigured("VOICE_STT_EARLY_MS must be 0 (off) or more.")
# What that early transcript's words do (calls.turnend): after a complete
# thought the utterance ends at VOICE_VAD_COMPLETE_MS of silence (at once if
# the words come later), after words that trail off ("a table for", "and um")
# at VOICE_VAD_TRAILING_OFF_MS, so a caller looking for a word is not cut
# off. 400 ms still spans a breath in mid-sentence; each applies only if the
# words come before VOICE_VAD_SILENCE_MS has passed. COMPLETE 0 or not below
# the silence, TRAILING_OFF not above it: off.
VOICE_VAD_COMPLETE_MS = env.int("VOICE_VAD_COMPLETE_MS", default=400)
VOICE_VAD_TRAILING_OFF_MS = env.int("VOICE_VAD_TRAILING_OFF_MS", default=1000)
if VOICE_VAD_COMPLETE_MS < 0 or VOICE_VAD_TRAILING_OFF_MS < 0:
    raise ImproperlyConfigured("VOICE_VAD_COMPLETE_MS and _TRAILING_OFF_MS must be 0 or more.")
VOICE_MAX_UTTERANCE_S = env.float("VOICE_MAX_UTTERANCE_S", default=15.0)
VOICE_IDLE_TIMEOUT_S = env.float("VOICE_IDLE_TIMEOUT_S", default=120.0)
VOICE_DISCONNECT_GRACE_S = env.float("VOICE_DISCONNECT_GRACE_S", default=30.0)
# The consumer's watchdog per turn (docs/reliability.md). A worker running a
# turn's task sends a heartbeat every second; one silent for VOICE_TURN_STALL_S
# died (SIGKILL, OOM, a hung process), so the turn fails over to the fallback
# line. 5 s leaves room for a busy 2-core box to miss a few beats.
VOICE_TURN_STALL_S = env.float("VOICE_TURN_STALL_S", default=5.0)
# No word from any worker for this long while the turn waits (in a queue behind
# other callers' turns, or a message lost with Redis) also fails the turn: a
# caller should not wait in silence longer than this.
VOICE_TURN_QUEUE_S = env.float("VOICE_TURN_QUEUE_S", default=15.0)
VOICE_HISTORY_TURNS = env.int("VOICE_HISTORY_TURNS", default=10)
# Threads per web process for the calls' database work (calls/calldb.py): a
# turn costs the call one short write, so a few carry hundreds of callers.
VOICE_DB_THREADS = env.int("VOICE_DB_THREADS", default=4)
VOICE_MAX_TEXT_CHARS = env.int("VOICE_MAX_TEXT_CHARS", default=2000)
# Flood protection: audio may arrive this many times faster than real time
# (a client catching up after a network stall), with two seconds of burst.
VOICE_MAX_AUDIO_SPEEDUP = env.float("VOICE_MAX_AUDIO_SPEEDUP", default=3.0)
VOICE_MAX_MESSAGES_PER_S = env.float("VOICE_MAX_MESSAGES_PER_S", default=20.0)
# Transport limit (voiceproj/serve.py): a WebSocket message or frame over this
# many bytes closes the socket with 1009, checked on the frame header before
# the payload is buffered. The largest valid input is an audio frame of 1000 ms
# at 48 kHz (96,000 bytes) or a text message of 64 KiB; 128 KiB leaves room
# above both. autobahn holds outgoing messages to it as well: the largest is an
# audio chunk (Piper's 0.5 s is 22,050 bytes; Cartesia's at most 64 KiB).
VOICE_MAX_WS_MESSAGE_BYTES = env.int("VOICE_MAX_WS_MESSAGE_BYTES", default=128 * 1024)

# --- Per-user quotas (calls/quotas.py) and sign-up -----------------------------
# How much of the shared pipeline one user may hold, counted across every web
# process (docs/api.md#quotas). 0 or an empty value turns a quota off.


def env_quota(name: str, default: int) -> int:
    """A quota from the environment: a whole number, 0 or empty for no limit."""
    value = int(env.str(name, default=str(default)).strip() or 0)
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be 0 (unlimited) or more.")
    return value


# Live calls at once: a person is on one call, with perhaps a second tab and a
# reconnecting third; a fourth is a script holding the workers' time.
VOICE_MAX_ACTIVE_CALLS_PER_USER = env_quota("VOICE_MAX_ACTIVE_CALLS_PER_USER", 3)
# Calls started in any hour: trying an agent over and over starts one a minute
# at most; a loop creating sessions stops here.
VOICE_SESSIONS_PER_HOUR = env_quota("VOICE_SESSIONS_PER_HOUR", 60)
# Caller turns (typed or spoken) in any minute, across all of the user's calls:
# three callers at a brisk human pace (a turn every 6 s each) fit; a script
# sending turns back to back, each a job for one shared worker per stage, does not.
VOICE_TURNS_PER_MINUTE = env_quota("VOICE_TURNS_PER_MINUTE", 30)
# Anyone may create an account: allauth's switch, which its adapter's
# is_open_for_signup reads for the web sign-up and POST /api/auth/register asks
# too. ALLOW_SIGNUP=false on a private install, where an admin creates users.
ACCOUNT_SIGNUP_ENABLED = env.bool("ALLOW_SIGNUP", default=True)

# --- Phone calls through Twilio (calls.telephony, docs/telephony.md) -----------
# The account that owns the agents' numbers: outbound calls and hang-ups use
# both. The auth token also signs Twilio's webhooks; while it is empty, only a
# DEBUG server accepts unsigned webhooks (local tests), any other refuses them.
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
# Where the SDK sends REST requests instead of https://api.twilio.com (a local
# fake in tests); empty means Twilio itself.
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="")

# Log lines as plain text (``plain``, for a terminal) or one JSON object a line
# (``json``, for a log collector), where the session_id and turn_id every record
# carries (voiceproj/logcontext.py) are keys: one turn's lines, gathered from
# the web process and every worker, share them. Workers log through this too.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"turn": {"()": "voiceproj.logcontext.TurnContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["turn"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
