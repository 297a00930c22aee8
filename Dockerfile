# syntax=docker/dockerfile:1
#
# One image for all four services. The entrypoint is `python -m`, the command is the module:
#
#   docker run IMAGE                          -> python -m services.links (the default)
#   docker run IMAGE services.rewards         -> python -m services.rewards
#   docker run IMAGE shared.migrate links     -> apply the links database's migrations
#   docker run IMAGE shared.messaging.topics  -> create every Kafka topic (idempotent)
#
# Configuration comes from the environment only (see deploy/README.md).

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: compile the project and its dependencies into a self-contained venv ---------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers only for dependencies that have no wheel for this platform; they stay in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# .dockerignore lets in only pyproject.toml, README*, LICENSE* and the package directories.
COPY . .
# A regular (non-editable) install: the venv alone is the application, /src is not needed at run
# time. pip byte-compiles on install, so the read-only root filesystem needs no .pyc writes later.
RUN pip install --upgrade pip \
    && pip install . \
    && pip uninstall -y pip

# --- runtime: slim base, no compilers, non-root ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="referral-platform" \
      org.opencontainers.image.description="Event-driven referral-marketing platform: links, attribution, rewards, notifications" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    HOST=0.0.0.0

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# An empty, root-owned working directory: `python -m` puts the cwd on sys.path, so it must not be
# writable by the app (/tmp is, and is an emptyDir in Kubernetes).
WORKDIR /app
USER 10001:10001

# links 8001, attribution 8002, rewards 8003, notifications 8004 (each reads PORT)
EXPOSE 8001 8002 8003 8004

ENTRYPOINT ["python", "-m"]
CMD ["services.links"]
