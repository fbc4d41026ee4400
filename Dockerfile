FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY accrochage ./accrochage
RUN pip install --no-cache-dir -c constraints.txt .
# Records hold personal data: the service runs as a user of its own, and the volumes compose
# mounts on these folders take their owner from the image.
RUN useradd --system --uid 10001 --home-dir /data accrochage \
    && mkdir -p /data/state /data/outbox /data/backups \
    && chown -R accrochage:accrochage /data
USER accrochage
WORKDIR /data
# /health is open (no token) and says degraded when the state cannot be written; the port is
# api.bind's in the configuration compose mounts (0.0.0.0:8787).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/health', timeout=5)"
ENTRYPOINT ["accrochage"]
CMD ["worker"]
