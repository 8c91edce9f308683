#!/usr/bin/env bash
# Builds the Doorstep FFI library and generates its Kotlin, Swift and Python bindings.
#
# Usage: scripts/bindings.sh [--debug]
#   default: the `release-ffi` profile (release with LTO, one codegen unit, opt-level "s": the
#     library apps ship), built twice: the phone build (`--no-default-features`: no HTTP stack
#     of its own, the app gives the platform's; what scripts/android-build.sh ships) and the
#     default build (with the library's own HTTP client: the JVM and desktop one, from which
#     the bindings are generated). Prints both stripped sizes and writes them to
#     docs/bench/ffi-size.md (.rows), the fragment scripts/bench.sh puts into docs/benchmarks.md.
#   --debug: debug build (faster; what the binding tests use).
# Output: target/bindings/{kotlin,swift,python}, and the library copied beside the Python
# module (target/bindings/python/libdoorstep_ffi.so) so `import doorstep` finds it.
# The generator is this crate's own `uniffi-bindgen` binary (same uniffi version as the
# library), run in library mode: names come from the crate's ffi/uniffi.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
PROFILE=release-ffi
case "${1:-}" in
  --debug) PROFILE=debug ;;
  "") ;;
  *) echo "usage: $0 [--debug]" >&2; exit 2 ;;
esac
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$(uname -s)" in
  Darwin) LIB_FILE=libdoorstep_ffi.dylib ;;
  *) LIB_FILE=libdoorstep_ffi.so ;;
esac

if [ "$PROFILE" = release-ffi ]; then
  # The phone build first (the second build overwrites the library's file).
  cargo build --locked -p doorstep-ffi --lib --profile release-ffi --no-default-features
  PHONE_LIB="$TARGET_DIR/$PROFILE/phone-$LIB_FILE"
  cp "$TARGET_DIR/$PROFILE/$LIB_FILE" "$PHONE_LIB"
  cargo build --locked -p doorstep-ffi --lib --profile release-ffi
else
  cargo build --locked -p doorstep-ffi --lib
fi
LIB="$TARGET_DIR/$PROFILE/$LIB_FILE"
# The generator is a build tool: a debug build of it is enough whatever the library's profile.
cargo build --locked -p doorstep-ffi --features cli --bin uniffi-bindgen
BINDGEN="$TARGET_DIR/debug/uniffi-bindgen"

OUT="$TARGET_DIR/bindings"
rm -rf "$OUT"
for lang in kotlin swift python; do
  # No --config: uniffi 0.32 reads the crate's own ffi/uniffi.toml (found through cargo
  # metadata) and ignores, with a warning, an old-style file passed with --config.
  "$BINDGEN" generate --library "$LIB" --language "$lang" --out-dir "$OUT/$lang" --no-format
done
# Kotlin: a call on an object after its close() is thrown by the generated code itself, as an
# IllegalStateException outside the DoorstepException hierarchy. Make it the typed
# DoorstepException.Closed (ffi/src/error.rs), and fail loudly if a uniffi upgrade changed
# the line, so the rule cannot silently lapse.
KT="$OUT/kotlin/vn/doorstep/core/doorstep.kt"
DESTROYED='throw IllegalStateException("${this.javaClass.simpleName} object has already been destroyed")'
CLOSED='throw DoorstepException.Closed("${this.javaClass.simpleName} was closed: open the store again")'
if ! grep -qF "$DESTROYED" "$KT"; then
  echo "bindings.sh: the generated Kotlin no longer has uniffi's 'already been destroyed' line; update the Closed rewrite" >&2
  exit 1
fi
python3 - "$KT" "$DESTROYED" "$CLOSED" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path, encoding="utf-8").read()
open(path, "w", encoding="utf-8").write(text.replace(old, new))
PY
cp "$LIB" "$OUT/python/"
mkdir -p "$OUT/lib"
cp "$LIB" "$OUT/lib/"
echo "bindings in $OUT/{kotlin,swift,python}; library $LIB ($PROFILE)"

if [ "$PROFILE" = release-ffi ]; then
  arch=$(uname -m)
  # stripped_size LIB: the size of a stripped copy, in bytes.
  stripped_size() {
    local copy="$OUT/lib/$(basename "$1").stripped"
    cp "$1" "$copy"
    strip "$copy"
    wc -c <"$copy"
  }
  mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1000000 }'; }
  mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
  phone=$(stripped_size "$PHONE_LIB")
  full=$(stripped_size "$LIB")
  met=$(awk -v b="$phone" 'BEGIN { print (b <= 4000000 ? "yes" : "**no**") }')
  echo "stripped $LIB_FILE ($arch), phone build (the platform's HTTP): $phone bytes = $(mb "$phone") MB ($(mib "$phone") MiB)"
  echo "stripped $LIB_FILE ($arch), with the library's own HTTP client: $full bytes = $(mb "$full") MB ($(mib "$full") MiB)"
  mkdir -p docs/bench
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  [ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit plus uncommitted changes"
  {
    echo "| FFI library size, stripped, $arch, the phone build (sync over the platform's HTTP) | ≤ 4 MB | $(mb "$phone") MB ($phone bytes) | — | $met |"
    echo "| FFI library size, stripped, $arch, with the library's own HTTP client (JVM, desktop) | — | $(mb "$full") MB ($full bytes) | — | — |"
  } >docs/bench/ffi-size.rows
  cat >docs/bench/ffi-size.md <<MD
## FFI library size

Generated by \`scripts/bindings.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), source at $commit.
\`$LIB_FILE\` for $arch, built with the \`release-ffi\` profile (release, \`lto = "fat"\`,
\`codegen-units = 1\`, \`opt-level = "s"\`), then \`strip\`:

| build | stripped | unstripped |
| --- | ---: | ---: |
| the phone build (\`--no-default-features\`): the app gives its HTTP client (\`useHttpTransport\`) | **$phone bytes ($(mb "$phone") MB, $(mib "$phone") MiB)** | $(wc -c <"$PHONE_LIB") bytes |
| the default build (feature \`builtin-http\`): the library's own client, ureq with rustls | $full bytes ($(mb "$full") MB, $(mib "$full") MiB) | $(wc -c <"$LIB") bytes |

Both hold the whole core with the sync protocol (zstd, signatures, sealing), SQLite (SQLite3
Multiple Ciphers with AEGIS-256 and SQLCipher 4's scheme, no OpenSSL, built by the \`sqlite\` crate:
ADR 0008) and the uniffi scaffolding; the difference is the HTTP and TLS stack (ureq, rustls,
ring, the public web roots), which a phone has in its platform already.

Where the phone build's bytes are (\`scripts/ffi-size-breakdown.py\`: the sizes of the
unstripped library's symbols, by the library they come from; section overhead such as unwind
tables is not in them):

$(python3 scripts/ffi-size-breakdown.py "$PHONE_LIB")
MD
  echo "wrote docs/bench/ffi-size.md and .rows (scripts/bench.sh puts them into docs/benchmarks.md)"
fi
