# The one production image: web (gunicorn), worker and beat all run it with a different command.
# Configuration comes from the environment at run time (see docker-compose.yml); nothing secret is
# baked in. No HEALTHCHECK here: docker-compose.yml defines one per service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=backend.settings \
    VAR_DIR=/app/var

WORKDIR /app

# A fixed uid so volume ownership stays stable across rebuilds.
RUN groupadd --system --gid 10001 interlude \
    && useradd --system --uid 10001 --gid interlude --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin interlude

# Dependencies first so a code change does not reinstall them (every pin has a binary wheel).
COPY requirements.txt .
RUN pip install -r requirements.txt

# The code stays owned by root: the app user can read it but not rewrite it.
COPY . .

# collectstatic imports the production settings, which insist on SECRET_KEY and DATABASE_URL (and
# FIELD_ENCRYPTION_KEYS). The values below exist only for this one command: nothing connects to the
# database, and none of them reaches the image's environment. EMBEDDED stays unset (production shape).
# Afterwards: var/ is the only place the app may write; /app/beat holds beat's schedule file (a
# volume in compose, initialised from this directory and so owned by the app user).
RUN env -u EMBEDDED \
        SECRET_KEY=build-only-not-a-secret \
        DATABASE_URL=postgres://build:build@127.0.0.1:5432/build \
        FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
        python manage.py collectstatic --noinput \
    && mkdir -p /app/var/prometheus /app/beat \
    && chown interlude:interlude /app/var /app/var/prometheus /app/beat

# gunicorn runs several worker processes: each writes its /metrics request histogram to files here
# and a scrape, answered by any one worker, sums them (prometheus_client's multiprocess mode). Set
# after collectstatic, for which the directory did not exist yet. The directory must be emptied each
# time gunicorn starts (the CMD below and compose's web command do it); worker and beat never write.
ENV PROMETHEUS_MULTIPROC_DIR=/app/var/prometheus

USER interlude

EXPOSE 8000

# Worker count: gunicorn reads WEB_CONCURRENCY from the environment.
# gthread: a long streaming export runs in a thread while the worker keeps answering the arbiter, so
# --timeout (a hung-worker guard) does not cut off a download of a whole clinic.
# The shell empties the metrics directory first: files a previous run left would be summed in again.
CMD ["sh", "-c", "mkdir -p \"${PROMETHEUS_MULTIPROC_DIR:?}\" && rm -f \"$PROMETHEUS_MULTIPROC_DIR\"/*.db && exec gunicorn backend.wsgi --bind 0.0.0.0:8000 --worker-class gthread --threads 4 --timeout 30 --graceful-timeout 25"]
