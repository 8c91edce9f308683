#!/usr/bin/env bash
# Builds the Doorstep FFI library and generates its Kotlin, Swift and Python bindings.
#
# Usage: scripts/bindings.sh [--debug]
#   default: release build; prints the stripped size of the x86_64 library.
#   --debug: debug build (faster; what the binding tests use).
# Output: target/bindings/{kotlin,swift,python}, and the library copied beside the Python
# module (target/bindings/python/libdoorstep_ffi.so) so `import doorstep` finds it.
# The generator is this crate's own `uniffi-bindgen` binary (same uniffi version as the
# library), run in library mode: names come from ffi/uniffi.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
PROFILE=release
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

if [ "$PROFILE" = release ]; then
  cargo build --locked -p doorstep-ffi --lib --release
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
  "$BINDGEN" generate --library "$LIB" --language "$lang" --out-dir "$OUT/$lang" --no-format \
    --config ffi/uniffi.toml
done
cp "$LIB" "$OUT/python/"
mkdir -p "$OUT/lib"
cp "$LIB" "$OUT/lib/"
echo "bindings in $OUT/{kotlin,swift,python}; library $LIB ($PROFILE)"

if [ "$PROFILE" = release ]; then
  STRIPPED="$OUT/lib/$LIB_FILE.stripped"
  cp "$LIB" "$STRIPPED"
  strip "$STRIPPED"
  bytes=$(wc -c <"$STRIPPED")
  mib=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
  echo "stripped $LIB_FILE ($(uname -m)): $bytes bytes = $mib MiB"
fi
