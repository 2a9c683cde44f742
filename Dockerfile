# syntax=docker/dockerfile:1
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
    BOT_DATABASE=/data/bot.sqlite3
USER bot
VOLUME ["/data"]
CMD ["python", "-m", "bot", "run"]
