# syntax=docker/dockerfile:1
# Multi-stage: build a virtualenv with TaylorDash and its dependencies, then copy it into a slim
# runtime image that runs as an unprivileged user. Build: docker build -t taylordash:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kernel kernel
COPY builtin_plugins builtin_plugins
COPY sdk sdk
COPY sandbox sandbox
COPY migrations migrations
RUN python -m venv /opt/taylordash \
 && /opt/taylordash/bin/pip install pip==24.3.1 \
 && /opt/taylordash/bin/pip install .

FROM ${PYTHON_IMAGE} AS runtime
# pg_dump/pg_restore for `taylordash backup` (same major version as the PostgreSQL service).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/taylordash --create-home --shell /usr/sbin/nologin taylordash
COPY --from=build /opt/taylordash /opt/taylordash
ENV PATH=/opt/taylordash/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TD_DATA_DIR=/var/lib/taylordash \
    TD_HOST=0.0.0.0 \
    TD_PORT=8000
USER 10001:10001
WORKDIR /var/lib/taylordash
EXPOSE 8000
# Ready: the database, the bus and every plugin's checks pass (/health/live only says the process is up).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status != 200)"
ENTRYPOINT ["taylordash"]
CMD ["serve"]
