# wapa production image: `wapa run` for linux/amd64 and linux/arm64 (Raspberry Pi 4/5, 64-bit OS).
#   docker buildx build --platform linux/amd64,linux/arm64 -t wapa:latest .
# Debian bookworm, not Alpine: neonize's native library needs glibc 2.34+ (bookworm has 2.36).
# Every dependency ships binary wheels for both architectures, so no compiler is needed anywhere.
# tests/test_docker_image.py lints this file with hadolint and replays its install steps.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core/ core/
COPY adapters/ adapters/
COPY sim/ sim/
COPY app/ app/
COPY bench/ bench/
# The README's install command (`pip install .` of the project), into the venv the final stage
# copies. The cache mount keeps downloaded wheels between rebuilds on a slow board.
RUN --mount=type=cache,target=/root/.cache/pip /opt/venv/bin/pip install .

FROM ${PYTHON_IMAGE}
# libmagic1: neonize imports python-magic, which loads it at import time.
# tini: PID 1 that forwards SIGTERM to `wapa run` (graceful shutdown) and reaps zombies.
# Upstream versions pinned; the Debian revision is left free because it differs per architecture.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1='1:5.44-*' tini='0.19.0-*' \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 wapa \
    && useradd --system --uid 10001 --gid wapa --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin wapa \
    && mkdir -p /app/data/backups /app/logs \
    && chown -R wapa:wapa /app/data /app/logs
COPY --from=builder /opt/venv /opt/venv
# The HTTP server listens on all interfaces inside the container; docker-compose.yml publishes
# it on the host's 127.0.0.1 only. State lives in the /app/data volume.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WAPA_HTTP_HOST=0.0.0.0 \
    WAPA_HTTP_PORT=8080 \
    WAPA_DB=/app/data/wapa.db \
    WAPA_SESSION_DB=/app/data/session.db
WORKDIR /app
USER 10001:10001
VOLUME ["/app/data", "/app/logs"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["wapa", "healthcheck"]
ENTRYPOINT ["tini", "--"]
CMD ["wapa", "run"]
