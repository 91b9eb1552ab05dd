# One image for every huxley-nats service and skill host; compose picks the
# command. Real deployments pull python:3.13-slim-trixie from Docker Hub.
ARG PYTHON_IMAGE=python:3.13-slim-trixie
FROM ${PYTHON_IMAGE}

# ffmpeg decodes audiobooks for the audiobooks skill, espeak-ng is the offline
# simulator's voice; set APT_PACKAGES="" to skip them.
ARG APT_PACKAGES="ffmpeg espeak-ng"
RUN if [ -n "$APT_PACKAGES" ]; then \
      apt-get update && apt-get install -y --no-install-recommends $APT_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# Services run as an unprivileged user (uid 10001). /data is theirs, so a
# fresh named volume mounted there starts owned by it. No credential is ever
# in the image: compose's `init` service writes them into volumes at start.
RUN groupadd --system --gid 10001 huxley \
    && useradd --system --uid 10001 --gid huxley --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin huxley \
    && mkdir -p /data && chown huxley:huxley /data

# Use the system CA store (a corporate proxy's CA lives there, not in certifi).
# Bytecode is compiled at build time: the root filesystem is read-only, and
# every health check starts a Python process.
ENV PYTHONUNBUFFERED=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    UV_NATIVE_TLS=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/huxley
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir uv

WORKDIR /src
COPY pyproject.toml uv.lock .python-version README.md ./
COPY libs libs
COPY services services
COPY skills skills
# The workspace, the published Huxley skills (group "skills"), no test tools.
RUN /opt/uv/bin/uv sync --frozen --no-dev --group skills --all-packages --no-editable \
    && rm -rf /root/.cache

COPY personas /app/personas
ENV PATH=/opt/huxley/bin:$PATH \
    HOME=/data \
    PYTHONDONTWRITEBYTECODE=1 \
    HUXLEY_PERSONAS_DIR=/app/personas \
    HUXLEY_DATA_DIR=/data \
    HUXLEY_LOG_JSON=1
WORKDIR /app
USER huxley
CMD ["huxley", "--help"]
