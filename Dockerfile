# MongoLake server image: `docker build -t mongolake .` then
# `docker run -p 27017:27017 -v lake:/data mongolake` (tables in /data/lake), or see compose.yaml
# for MongoLake with MinIO as its S3 store.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mongolake ./mongolake
COPY wire ./wire
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data mongolake \
    && mkdir -p /data/lake /data/wal \
    && chown -R mongolake /data

USER mongolake
WORKDIR /data
# Every option is also a MONGOLAKE_* variable (docs/configuration.md); these suit a container.
ENV MONGOLAKE_HOST=0.0.0.0 \
    MONGOLAKE_STORAGE=/data/lake \
    MONGOLAKE_WAL_DIR=/data/wal \
    MONGOLAKE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 27017 9216

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["mongolake", "ping", "--port", "27017", "--timeout", "3"]
# SIGTERM: stop accepting, finish requests in flight, flush memtables, exit (give it time: stop_grace_period)
STOPSIGNAL SIGTERM
ENTRYPOINT ["mongolake"]
CMD ["serve"]
