# Sourced by the JVM test scripts (test-kotlin.sh, test-android.sh, test-quickstart.sh) after
# `cd` to the repository's root: sets ROOT and TARGET_DIR (absolute), puts cargo on the PATH,
# and installs a JDK and Maven with apt-get when they are missing and we are root.
ROOT=$(pwd)
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
if ! command -v mvn >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq default-jdk-headless maven >/dev/null
  else
    echo "java or mvn not found: install a JDK (17+) and Maven" >&2
    exit 1
  fi
fi
