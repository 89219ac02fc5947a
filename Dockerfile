# syntax=docker/dockerfile:1
# (the directive above selects BuildKit's Dockerfile frontend: `RUN --mount=type=cache` needs it)
# wapa production image: `wapa run` for linux/amd64 and linux/arm64 (Raspberry Pi 4/5, 64-bit OS).
#   docker buildx build --platform linux/amd64,linux/arm64 -t wapa:latest .
# Debian bookworm, not Alpine: neonize's native library needs glibc 2.34+ (bookworm has 2.36).
# Every dependency ships binary wheels for both architectures, so no compiler is needed anywhere.
# tests/docker/test_docker_dockerfile.py lints this file with hadolint and checks its structure;
# tests/docker/test_docker_smoke.py replays the builder's steps and runs the final stage's command.
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
# copies. The cache mount keeps downloaded wheels between rebuilds on a slow board. Then pip and
# setuptools leave the venv: wapa never installs anything at run time, and a package manager
# inside the runtime venv is only attack surface (the base image's own pip in /usr/local stays:
# it is the base image's, outside the venv wapa runs from).
RUN --mount=type=cache,target=/root/.cache/pip /opt/venv/bin/pip install . \
    && /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools

FROM ${PYTHON_IMAGE}
# libmagic: neonize's media helpers use python-magic, which loads it (at first use: wapa defers
# python-magic's import, adapters/whatsapp/imports.py; wapa's own paths never call it).
# tini: PID 1 that forwards SIGTERM to `wapa run` (graceful shutdown) and reaps zombies.
# Upstream versions pinned per Debian release of the base image (PYTHON_IMAGE): bookworm has
# libmagic1 5.44; trixie renamed it libmagic1t64 (the 64-bit time_t transition) at 5.46, and a
# version cannot be pinned through the old name there. Another release stops the build with a
# message rather than install whatever it has. The Debian revision is left free because it
# differs per architecture (binNMUs such as +b3).
RUN . /etc/os-release \
    && apt-get update \
    && case "$VERSION_CODENAME" in \
        bookworm) apt-get install -y --no-install-recommends libmagic1='1:5.44-*' tini='0.19.0-*' ;; \
        trixie) apt-get install -y --no-install-recommends libmagic1t64='1:5.46-*' tini='0.19.0-*' ;; \
        *) echo "Dockerfile: no libmagic pin for Debian ${VERSION_CODENAME}; add one" >&2; exit 1 ;; \
    esac \
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
