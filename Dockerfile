# synthesia-watchd container image.
#
#   docker build -t synthesia-watchd .
#   docker run -d --name synthesia-watchd \
#     -e PUID=1026 -e PGID=100 -e UMASK=002 \
#     -v /volume1/docker/synthesia-watchd/config:/config:ro \
#     -v /volume1/docker/synthesia-watchd/data:/data \
#     -v /volume1/video/drop:/drop -v /volume1/video/dubbed:/dubbed \
#     --stop-timeout 45 synthesia-watchd
#
# See docker-compose.example.yml for a commented NAS setup.

# Bookworm pinned: its util-linux ships setpriv, which the entrypoint uses to drop root.
FROM python:3.12-slim-bookworm

# PYTHONUNBUFFERED: log lines reach `docker logs` at once. STATE_DIRECTORY: the ledger and
# heartbeat live in the /data volume. SYNTHESIA_WATCHD_CONFIG: lets `health` (the
# HEALTHCHECK) find the same config as the daemon. PUID/PGID/UMASK: see docker/entrypoint.sh.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATE_DIRECTORY=/data \
    SYNTHESIA_WATCHD_CONFIG=/config/config.yaml \
    PUID=1000 \
    PGID=1000 \
    UMASK=002

# The unprivileged account the daemon runs as; the entrypoint moves it to PUID/PGID.
RUN groupadd --gid 1000 watchd \
    && useradd --uid 1000 --gid watchd --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin watchd \
    && mkdir -p /config /data \
    && chown watchd:watchd /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY synthesia_watchd ./synthesia_watchd
# With the console (web), notification (notify) and PostgreSQL ledger (postgres) extras: all
# stay off until configured.
# DL3013 reads ".[extras]" as an unpinned registry package; it is this source tree.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[web,notify,postgres]" \
    && rm -rf /src
WORKDIR /

COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh

# /config: config.yaml (read-only is fine). /data: the ledger, keep it on a local disk.
# The drop and output folders are bind mounts of your NAS shares, named in config.yaml.
# The API key: env SYNTHESIA_API_KEY, or a Docker secret at /run/secrets/synthesia_api_key.
VOLUME ["/config", "/data"]

# The daemon's graceful signal: stop taking work, finish or abort in-flight calls within
# shutdown_timeout (30 s default), checkpoint, exit 0. Give it a longer stop timeout (45 s).
STOPSIGNAL SIGTERM

# Reads the heartbeat the main loop writes into /data; exit 1 when it is stale or missing.
HEALTHCHECK --interval=60s --timeout=10s --start-period=2m --retries=3 \
    CMD ["synthesia-watchd", "health"]

# Starts as root only to apply PUID/PGID, then setpriv drops to that user and execs the CMD.
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["synthesia-watchd", "run", "-c", "/config/config.yaml"]
