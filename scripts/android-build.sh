#!/usr/bin/env bash
# Cross-compiles the Doorstep core (crate doorstep-ffi, `release-ffi` profile) for Android with
# cargo-ndk, puts each libdoorstep_ffi.so under android-demo/app/src/main/jniLibs/<abi>/, and
# generates the Kotlin bindings into android-demo/app/src/main/generated/. Then open
# android-demo/ in Android Studio (or run its Gradle build).
#
# Needs: the Android NDK (ANDROID_NDK_HOME, or ANDROID_NDK_ROOT), cargo-ndk
# (`cargo install cargo-ndk`) and the Rust targets (`rustup target add aarch64-linux-android
# armv7-linux-androideabi x86_64-linux-android`). Not run in this repository's CI: no NDK there.
# Usage: scripts/android-build.sh [ABI...]   (default: arm64-v8a armeabi-v7a x86_64)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
ABIS=("$@")
[ ${#ABIS[@]} -gt 0 ] || ABIS=(arm64-v8a armeabi-v7a x86_64)
MIN_SDK=24
APP=android-demo/app/src/main

NDK=${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}
if [ -z "$NDK" ] || [ ! -d "$NDK" ]; then
  echo "error: the Android NDK was not found: set ANDROID_NDK_HOME to its folder" >&2
  echo "  (Android Studio: SDK Manager > SDK Tools > NDK; then e.g." >&2
  echo "   export ANDROID_NDK_HOME=\$HOME/Android/Sdk/ndk/<version>)" >&2
  exit 1
fi
export ANDROID_NDK_HOME="$NDK"
if ! cargo ndk --version >/dev/null 2>&1; then
  echo "error: cargo-ndk is not installed: run 'cargo install cargo-ndk'" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  for abi in "${ABIS[@]}"; do
    case "$abi" in
      arm64-v8a) t=aarch64-linux-android ;;
      armeabi-v7a) t=armv7-linux-androideabi ;;
      x86_64) t=x86_64-linux-android ;;
      x86) t=i686-linux-android ;;
      *) echo "error: unknown ABI $abi" >&2; exit 2 ;;
    esac
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  done
fi

TARGETS=()
for abi in "${ABIS[@]}"; do TARGETS+=(-t "$abi"); done
# cargo-ndk sets the NDK's clang as linker for each target and copies the libraries into
# jniLibs/<abi>/ (-o); --platform is the minSdk of android-demo/app/build.gradle.kts.
# --no-default-features: no HTTP stack of its own; the app syncs over the platform's
# (logic/PlatformHttp.kt, docs/adr/0011-the-phones-http-is-the-platforms.md).
cargo ndk "${TARGETS[@]}" --platform "$MIN_SDK" -o "$APP/jniLibs" \
  build --locked -p doorstep-ffi --lib --profile release-ffi --no-default-features

# The bindings come from a host build of the same crate (library mode reads the interface
# metadata the library carries; it does not depend on the target or the profile).
scripts/bindings.sh --debug
rm -rf "$APP/generated"
mkdir -p "$APP/generated"
cp -r "${CARGO_TARGET_DIR:-target}/bindings/kotlin/." "$APP/generated/"
for abi in "${ABIS[@]}"; do
  ls -l "$APP/jniLibs/$abi/libdoorstep_ffi.so"
done
echo "android-demo is ready: open it in Android Studio, or run its Gradle build"
