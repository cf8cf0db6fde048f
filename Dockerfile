# The Zariz API image: runs `zariz migrate`, then serves with N uvicorn worker processes.
# Build: docker build -t zariz .   Run it with docker-compose.yml (Postgres, API, push worker).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ZARIZ_ENV=production

# A fixed numeric uid, so orchestrators can verify runAsNonRoot.
RUN groupadd --system --gid 10001 zariz \
 && useradd --system --uid 10001 --gid zariz --home-dir /srv/zariz --no-create-home \
    --shell /usr/sbin/nologin zariz

WORKDIR /srv/zariz
# The pinned runtime dependencies first (a layer that changes only with the lock), then the
# package itself: the migrations ship inside it (app/db/migrations), so a plain install migrates.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml ./
COPY app ./app
RUN pip install --no-cache-dir --no-deps . \
 && rm -rf app pyproject.toml \
 && mkdir -p /srv/zariz/var && chown zariz:zariz /srv/zariz/var

USER 10001:10001
EXPOSE 8000

# Ready = the database answers and is migrated to head (503 otherwise; urlopen raises on it).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]

# Shell form for ${WEB_CONCURRENCY}; exec hands PID 1 to uvicorn so SIGTERM stops it gracefully.
# With several API replicas, run `zariz migrate` once as a release step instead (see README).
CMD ["sh", "-c", "zariz migrate && exec zariz serve --host 0.0.0.0 --port 8000 --workers \"${WEB_CONCURRENCY:-2}\""]
