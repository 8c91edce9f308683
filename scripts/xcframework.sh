#!/usr/bin/env bash
# Builds DoorstepCore.xcframework for iOS (device and simulator) from the Rust library and the
# generated Swift bindings.
#
# MAC ONLY: needs macOS with Xcode (xcodebuild, lipo) and the Rust iOS targets
# (rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios). It is NOT run in
# CI and has not been run on this project's Linux machines; treat it as a starting point and
# check it on a Mac before relying on it.
# Usage: scripts/xcframework.sh   -> target/ios/DoorstepCore.xcframework
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)" != Darwin ]; then
  echo "scripts/xcframework.sh needs macOS with Xcode; nothing done" >&2
  exit 1
fi
PROFILE=release-ffi
OUT=target/ios
rm -rf "$OUT"
mkdir -p "$OUT/headers" "$OUT/sim"

for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
  cargo build --locked -p doorstep-ffi --lib --profile "$PROFILE" --target "$t"
done
# Swift sources and the C header/modulemap, generated from the host library (same metadata).
cargo build --locked -p doorstep-ffi --lib --profile "$PROFILE"
cargo run --locked -p doorstep-ffi --features cli --bin uniffi-bindgen -- generate \
  --library "target/$PROFILE/libdoorstep_ffi.dylib" --language swift --out-dir "$OUT/swift"
cp "$OUT/swift/DoorstepCoreFFI.h" "$OUT/headers/"
cp "$OUT/swift/DoorstepCoreFFI.modulemap" "$OUT/headers/module.modulemap"

lipo -create \
  "target/aarch64-apple-ios-sim/$PROFILE/libdoorstep_ffi.a" \
  "target/x86_64-apple-ios/$PROFILE/libdoorstep_ffi.a" \
  -output "$OUT/sim/libdoorstep_ffi.a"
xcodebuild -create-xcframework \
  -library "target/aarch64-apple-ios/$PROFILE/libdoorstep_ffi.a" -headers "$OUT/headers" \
  -library "$OUT/sim/libdoorstep_ffi.a" -headers "$OUT/headers" \
  -output "$OUT/DoorstepCore.xcframework"
echo "built $OUT/DoorstepCore.xcframework; add $OUT/swift/DoorstepCore.swift to the app target"
