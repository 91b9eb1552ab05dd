#!/usr/bin/env bash
# Debian packages and local services the tests need. Idempotent: installs only
# what is missing, starts PostgreSQL only when it is not running.
set -euo pipefail

PACKAGES=(
  nats-server        # the bus for `huxley up` and the tests (pip's deckr wheel is the fallback)
  ffmpeg             # audiobooks decode with it
  espeak-ng          # spoken test fixtures and the offline simulator's voice
  sox
  libportaudio2 portaudio19-dev alsa-utils   # PyAudio backend, ALSA null/loopback devices
  chromium chromium-driver                   # browser tests (headless)
  postgresql                                 # storage on PostgreSQL
  mosquitto                                  # MQTT broker, for `make bench`'s transport comparison
)

# --build-deps: only what building the venv needs (PyAudio compiles against
# PortAudio); `make setup` runs this before `uv sync`.
BUILD_ONLY=""
if [ "${1:-}" = "--build-deps" ]; then
  BUILD_ONLY=1
  PACKAGES=(gcc portaudio19-dev)
  if ! command -v dpkg >/dev/null 2>&1; then
    echo "== not a Debian system: install PortAudio's headers yourself if PyAudio fails to build"
    exit 0
  fi
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -n "$BUILD_ONLY" ] && exit 0

# PostgreSQL: start the cluster if it is not accepting connections.
if command -v pg_lsclusters >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # A cluster we just installed asks for passwords on loopback; the tests (like
  # our machines' preinstalled one) connect as `postgres` without one.
  if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    hba=/etc/postgresql/$version/main/pg_hba.conf
    echo "== PostgreSQL $version: trust auth on loopback (fresh install)"
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "== starting PostgreSQL $version"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 -q || echo "== warning: PostgreSQL does not answer on 127.0.0.1:5432"
fi
