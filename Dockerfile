# syntax=docker/dockerfile:1
# Multi-stage: build a wheel with its dependencies, then run it as a non-root user.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kernel kernel
COPY builtin_plugins builtin_plugins
COPY sdk sdk
COPY sandbox sandbox
COPY migrations migrations
RUN python -m venv /opt/taylordash \
 && /opt/taylordash/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/taylordash/bin/pip install --no-cache-dir .

FROM python:3.11.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/taylordash --create-home taylordash
COPY --from=build /opt/taylordash /opt/taylordash
ENV PATH=/opt/taylordash/bin:$PATH \
    TD_DATA_DIR=/var/lib/taylordash \
    TD_HOST=0.0.0.0 \
    TD_PORT=8000
USER taylordash
WORKDIR /var/lib/taylordash
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2).status != 200)"
ENTRYPOINT ["taylordash"]
CMD ["serve"]
