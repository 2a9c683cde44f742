# syntax=docker/dockerfile:1
# Multi-stage: build a virtualenv, copy it into a slim runtime that runs as a non-root user.
# All writes go to the /data volume, so the root filesystem can be mounted read-only.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 bot && mkdir /data && chown bot /data
COPY --from=build /venv /venv
WORKDIR /app
COPY knowledge ./knowledge
COPY config ./config
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BOT_DATABASE=/data/bot.sqlite3 \
    BOT_DATA_DIR=/data \
    BOT_HTTP__HOST=0.0.0.0 \
    BOT_HTTP__PORT=8080
USER 10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
CMD ["python", "-m", "bot", "run"]
