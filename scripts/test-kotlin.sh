#!/usr/bin/env bash
# JVM tests of the Kotlin bindings: builds the library and the bindings (debug), the `doorstep`
# server binary, then compiles the generated Kotlin with the tests (kotlin-maven-plugin) and
# runs them with JNA against the host-built library. Needs a JDK (17+) and Maven; the first run
# downloads the Kotlin compiler, JNA and JUnit from Maven Central.
# Usage: scripts/test-kotlin.sh   (installs a JDK and Maven with apt-get if missing and root)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/jvm-env.sh
. scripts/jvm-env.sh

scripts/bindings.sh --debug
cargo build --locked -p doorstep-server --bin doorstep

cd ffi/tests/kotlin
mvn -q -B test \
  -Ddoorstep.root="$ROOT" \
  -Ddoorstep.bindings="$TARGET_DIR/bindings/kotlin" \
  -Ddoorstep.lib="$TARGET_DIR/bindings/lib" \
  -Ddoorstep.bin="$TARGET_DIR/debug/doorstep"
# One closing line, counted from Surefire's reports (-q hides its own summary). It starts a
# line of its own: Maven ends its output with colour resets and no newline.
echo
awk -F'"' '/<testsuite / { for (i = 1; i < NF; i++) { if ($i ~ / tests=$/) t += $(i+1); if ($i ~ / failures=$/) f += $(i+1); if ($i ~ / errors=$/) f += $(i+1); if ($i ~ / skipped=$/) s += $(i+1) } }
     END { printf "kotlin: %d passed, %d failed, %d skipped\n", t - f - s, f, s }' target/surefire-reports/TEST-*.xml
