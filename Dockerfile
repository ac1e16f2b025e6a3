# syntax=docker/dockerfile:1
# sophia-mcp as a container: streamable HTTP MCP at /mcp, REST at /api/v4, /health, /ready, /metrics on :8000.
# Kubernetes manifests live in deploy/ (see deploy/README.md).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/sophia-mcp
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sophia_mcp ./sophia_mcp
COPY connectors ./connectors
# the package and its runtime dependencies only: no test extras, no editable install
RUN /opt/sophia-mcp/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/sophia-mcp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 sophia \
    && useradd --system --uid 10001 --gid sophia --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin sophia
COPY --from=build /opt/sophia-mcp /opt/sophia-mcp
# numeric, so Kubernetes' runAsNonRoot can verify it
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["sophia-mcp"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
