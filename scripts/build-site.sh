#!/usr/bin/env bash
# Builds the site the server serves, into target/site: the app compiled to wasm with its
# `hydrate` feature, wasm-bindgen's JS glue for it, the stylesheet, and the files in public/.
#
#   scripts/build-site.sh            # the debug bundle (quick to build)
#   scripts/build-site.sh --release  # the optimised bundle: the wasm-release profile, then wasm-opt -Oz,
#                                    # and gzipped copies the server sends to browsers that accept them
#
# The server is an ordinary cargo build (`cargo build -p server --no-default-features`, or
# `cargo test`), and any server build serves any bundle built from the same sources: the pages'
# markup does not depend on either's profile. What ties them is the bundle's name, which the
# server reads at compile time from LEPTOS_OUTPUT_NAME (.cargo/config.toml sets it for every
# cargo command); the pages then ask for pkg/<name>.js, pkg/<name>.wasm and pkg/<name>.css.
#
# Needs the wasm32-unknown-unknown target, wasm-bindgen at Cargo.lock's version and, for
# --release, binaryen 132's wasm-opt: scripts/install-toolchain.sh installs them and puts them
# on PATH. (This is what `cargo leptos build` did; cargo-leptos itself took 15-25 minutes to
# compile on a fresh machine, longer than everything here put together.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

release=0
for a in "$@"; do
    case "$a" in
        --release) release=1 ;;
        *) echo "usage: scripts/build-site.sh [--release]" >&2; exit 2 ;;
    esac
done

NAME="$(awk -F'"' '/^LEPTOS_OUTPUT_NAME *=/ { print $2; exit }' .cargo/config.toml)"
[[ -n "$NAME" ]] || { echo "[site] ERROR: no LEPTOS_OUTPUT_NAME in .cargo/config.toml" >&2; exit 1; }
SITE="$ROOT/target/site"
# The wasm build has a target directory of its own: it never waits for the server's build's
# lock (the two run side by side), and switching between them rebuilds nothing.
FRONT="$ROOT/target/front"

profile=debug
profile_args=()
if ((release)); then
    profile=wasm-release
    profile_args=(--profile wasm-release)
    # Debian's wasm-opt (108) produces bundles that silently fail to hydrate: only binaryen 132
    # from npm (scripts/install-toolchain.sh puts it in .tools/) will do.
    [[ -x "$ROOT/.tools/binaryen/node_modules/.bin/wasm-opt" ]] &&
        PATH="$ROOT/.tools/binaryen/node_modules/.bin:$PATH"
    wasm_opt_version="$(wasm-opt --version 2>/dev/null || true)"
    if [[ "$wasm_opt_version" != *"version 132"* ]]; then
        echo "[site] ERROR: wasm-opt is '${wasm_opt_version:-missing}', not binaryen 132: run scripts/install-toolchain.sh" >&2
        exit 1
    fi
fi

echo "[site] cargo build -p app (wasm, $profile)" >&2
cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
    --target-dir "$FRONT" "${profile_args[@]}"
wasm="$FRONT/wasm32-unknown-unknown/$profile/app.wasm"

# Built beside the site and swapped in whole, so a running server never serves one build's JS
# glue with another's wasm.
next="$(mktemp -d "$ROOT/target/site.next.XXXXXX")"
trap 'rm -rf "$next"' EXIT
chmod 755 "$next"
mkdir -p "$next/pkg"
echo "[site] wasm-bindgen $(wasm-bindgen --version | awk '{print $2}')" >&2
wasm-bindgen --target web --no-typescript --out-name "$NAME" --out-dir "$next/pkg" "$wasm"
# leptos's hydration script loads pkg/<name>.wasm, not wasm-bindgen's <name>_bg.wasm.
mv "$next/pkg/${NAME}_bg.wasm" "$next/pkg/$NAME.wasm"
if ((release)); then
    echo "[site] wasm-opt -Oz" >&2
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
        "$next/pkg/$NAME.wasm" -o "$next/pkg/$NAME.wasm"
fi
cp style/main.css "$next/pkg/$NAME.css"
cp -R public/. "$next/"
if ((release)); then
    # Gzipped copies beside the bundle: the server sends one to a browser that accepts gzip
    # (leptos_axum's static files are served precompressed when a .gz is there), so a first load
    # downloads ~1.3 MB of wasm instead of ~3.5. Written with the bundle, so never stale.
    for f in "$next/pkg/$NAME".{wasm,js,css}; do
        gzip -9 -n -k "$f"
        cmp -s "$f" <(gzip -dc "$f.gz") || { echo "[site] ERROR: $f.gz does not unzip to $f" >&2; exit 1; }
    done
fi

rm -rf "$SITE.old"
[[ -d "$SITE" ]] && mv "$SITE" "$SITE.old"
mv "$next" "$SITE"
rm -rf "$SITE.old"
gzipped=""
((release)) && gzipped=", $(du -sh "$SITE/pkg/$NAME.wasm.gz" | cut -f1) gzipped"
echo "[site] built $SITE ($(du -sh "$SITE/pkg/$NAME.wasm" | cut -f1) of wasm$gzipped)" >&2
