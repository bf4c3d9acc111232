#!/usr/bin/env bash
# Installs what building Mirrorset needs, and puts it on PATH. Idempotent: each step checks
# first and is skipped when its tool is already there at the right version.
#
#   source scripts/install-toolchain.sh --build  # build toolchain (run.sh)
#   source scripts/install-toolchain.sh --test   # + Chromium, chromedriver, PostgreSQL (test.sh)
#   bash scripts/install-toolchain.sh [--test]   # same, without changing the caller's PATH
# (When sourcing, always pass an argument: a bare `source` hands the caller's own arguments on.)
#
# Why each piece is pinned:
# - wasm-bindgen-cli must be EXACTLY the wasm-bindgen version in Cargo.lock, or the generated
#   JS glue does not match the wasm. It is read from Cargo.lock, so a `cargo update` that moves
#   wasm-bindgen is followed automatically.
# - wasm-opt comes from npm's binaryen@132.0.0 into .tools/binaryen (gitignored), first on
#   PATH. Debian's binaryen (108) produces release bundles that silently fail to hydrate, so a
#   system wasm-opt must never win.
# scripts/build-site.sh runs both. (It replaces cargo-leptos, which took 15-25 minutes to compile on
# a fresh machine and would download these two itself when missing.)

# Works both sourced and executed; only `set -euo pipefail` for the executed case, so that
# sourcing does not change the caller's shell options behind its back.
_mirrorset_sourced=0
(return 0 2>/dev/null) && _mirrorset_sourced=1
if [[ $_mirrorset_sourced == 0 ]]; then
    set -euo pipefail
fi

MIRRORSET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIRRORSET_BINARYEN_VERSION="132.0.0"
MIRRORSET_BINARYEN_PREFIX="$MIRRORSET_ROOT/.tools/binaryen"

_ms_log() { echo "[install-toolchain] $*" >&2; }

_ms_need() {
    command -v "$1" >/dev/null 2>&1 || { _ms_log "ERROR: '$1' not found. $2"; return 1; }
}

# The wasm-bindgen version pinned by Cargo.lock.
mirrorset_wasm_bindgen_version() {
    awk '
        $0 == "[[package]]" { in_pkg = 1; name = ""; next }
        in_pkg && $1 == "name" { name = $3; gsub(/"/, "", name); next }
        in_pkg && $1 == "version" && name == "wasm-bindgen" { v = $3; gsub(/"/, "", v); print v; exit }
    ' "$MIRRORSET_ROOT/Cargo.lock"
}

_ms_install_rust_parts() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    _ms_need cargo "Install Rust with rustup first (https://rustup.rs), toolchain 1.95." || return 1
    _ms_need rustup "Install Rust with rustup first (https://rustup.rs), toolchain 1.95." || return 1
    _ms_need cc "Install a C compiler first (apt-get install build-essential)." || return 1
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    case ":$PATH:" in *":$cargo_bin:"*) ;; *) export PATH="$cargo_bin:$PATH" ;; esac

    # 1. The wasm target.
    if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        _ms_log "wasm32-unknown-unknown: present"
    else
        _ms_log "adding target wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown || return 1
    fi

    # 2. wasm-bindgen-cli at exactly Cargo.lock's wasm-bindgen version. Not --locked: the
    #    wasm-bindgen-cli lockfiles of some versions do not build with this toolchain.
    local want
    want="$(mirrorset_wasm_bindgen_version)"
    if [[ -z "$want" ]]; then
        _ms_log "ERROR: no wasm-bindgen in $MIRRORSET_ROOT/Cargo.lock"
        return 1
    fi
    local have=""
    if command -v wasm-bindgen >/dev/null 2>&1; then
        have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')"
    fi
    if [[ "$have" == "$want" ]]; then
        _ms_log "wasm-bindgen-cli $have: present"
    else
        _ms_log "installing wasm-bindgen-cli =$want (found: ${have:-none}); a few minutes"
        cargo install wasm-bindgen-cli --version "=$want" || return 1
    fi
}

_ms_install_binaryen() {
    _ms_need npm "Install node and npm first (apt-get install nodejs npm)." || return 1
    local bin="$MIRRORSET_BINARYEN_PREFIX/node_modules/.bin"
    local have=""
    if [[ -x "$bin/wasm-opt" ]]; then
        have="$(node -p "require('$MIRRORSET_BINARYEN_PREFIX/node_modules/binaryen/package.json').version" 2>/dev/null || true)"
    fi
    if [[ "$have" == "$MIRRORSET_BINARYEN_VERSION" ]]; then
        _ms_log "wasm-opt (npm binaryen@$have): present"
    else
        _ms_log "installing npm binaryen@$MIRRORSET_BINARYEN_VERSION into $MIRRORSET_BINARYEN_PREFIX"
        mkdir -p "$MIRRORSET_BINARYEN_PREFIX" || return 1
        # A package.json of its own, so npm never walks up into some other project.
        [[ -f "$MIRRORSET_BINARYEN_PREFIX/package.json" ]] ||
            echo '{"name":"mirrorset-tools","private":true}' >"$MIRRORSET_BINARYEN_PREFIX/package.json"
        npm install --prefix "$MIRRORSET_BINARYEN_PREFIX" --no-audit --no-fund --loglevel=error \
            "binaryen@$MIRRORSET_BINARYEN_VERSION" >&2 || return 1
    fi
    # First on PATH, ahead of any system (Debian) wasm-opt.
    case ":$PATH:" in
        "$bin:"*) ;;
        *) export PATH="$bin:$PATH" ;;
    esac
    local found
    found="$(command -v wasm-opt)"
    if [[ "$found" != "$bin/wasm-opt" ]]; then
        _ms_log "ERROR: wasm-opt resolves to $found, not $bin/wasm-opt"
        return 1
    fi
}

_ms_apt_install() {
    # Only reached when something is missing, so `apt-get update` costs nothing on re-runs.
    if [[ $(id -u) -ne 0 ]]; then
        _ms_log "ERROR: need root to apt-get install $*; install them and re-run"
        return 1
    fi
    if [[ -z "${_MS_APT_UPDATED:-}" ]]; then
        _ms_log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || return 1
        _MS_APT_UPDATED=1
    fi
    _ms_log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 || return 1
}

# The PostgreSQL server binaries' directory (Debian keeps them off PATH).
mirrorset_pg_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
    [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]] && echo "$d"
}

_ms_install_test_deps() {
    local pkgs=()
    if command -v chromium >/dev/null 2>&1; then
        _ms_log "chromium: present"
    else
        pkgs+=(chromium)
    fi
    if command -v chromedriver >/dev/null 2>&1; then
        _ms_log "chromedriver: present"
    else
        pkgs+=(chromium-driver)
    fi
    if mirrorset_pg_bindir >/dev/null; then
        _ms_log "postgresql: present ($(mirrorset_pg_bindir))"
    else
        pkgs+=(postgresql)
    fi
    if ! command -v runuser >/dev/null 2>&1; then
        pkgs+=(util-linux)
    fi
    # scripts/schemathesis.sh: a venv for the pinned schemathesis, curl to seed its server.
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        pkgs+=(python3-venv)
    fi
    if ! command -v curl >/dev/null 2>&1; then
        pkgs+=(curl)
    fi
    if ((${#pkgs[@]})); then
        _ms_apt_install "${pkgs[@]}" || return 1
    fi
}

mirrorset_install_toolchain() {
    local with_test=0
    for a in "$@"; do
        case "$a" in
            --test) with_test=1 ;;
            --build) ;;
            *) _ms_log "unknown argument: $a"; return 2 ;;
        esac
    done
    _ms_install_rust_parts || return 1
    _ms_install_binaryen || return 1
    if ((with_test)); then
        _ms_install_test_deps || return 1
    fi
    _ms_log "toolchain ready (wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'), wasm-opt $(command -v wasm-opt))"
}

mirrorset_install_toolchain "$@"
