#!/usr/bin/env bash
# Where "my households today" spends its time (issue #15): `Store::my_households` as the core
# benchmark's `mine` section calls it (core/benches/core.rs: an officer assigned all 20
# villages, 4951 households), for this tree and, when BASE is given, for commit BASE built from
# a throwaway worktree:
#   - instructions (valgrind's callgrind, collecting only inside `Store::my_households`: counts
#     that stay stable on a noisy machine, unlike times), per call, inclusive, of the call and
#     of its parts, from the benchmark's quick run (the same list, 20 calls after a warm-up);
#   - wall time: the benchmark's `mine` section, ROUNDS runs of each build, BASE and this tree
#     alternating so machine noise hits both.
# Writes docs/bench/mine.md (folded into docs/benchmarks.md by scripts/bench.sh). About 3
# minutes per build under callgrind, plus the builds. BASE is built in target/bench-base, not
# in target/: cargo names and fingerprints a workspace crate by its path inside the workspace,
# so a build of another checkout in the same target dir replaces this tree's binaries and
# leaves them looking fresh. The first time, target/bench-base starts as a copy of
# target/release: the Rust dependencies are reused; the workspace's crates (their sources are
# newer) and the bundled C libraries (SQLite3 Multiple Ciphers, zstd: their build scripts see a new
# OUT_DIR) are rebuilt (8 minutes when that included OpenSSL, before ADR 0008 was revisited).
#
#   scripts/bench-mine.sh [BASE]      e.g. scripts/bench-mine.sh f09c2b3
#   ROUNDS=3 (default)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-}
ROUNDS=${ROUNDS:-3}
OUT=docs/bench/mine.md
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; [ -z "${WT:-}" ] || git worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT

command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }

TARGET="${CARGO_TARGET_DIR:-$PWD/target}"

# The core bench binary of the tree at $1, built into target dir $2; prints its path.
bench_binary() {
  (cd "$1" && CARGO_TARGET_DIR="$2" cargo bench -p doorstep-core --bench core --no-run \
    --message-format=json 2>/dev/null) |
    python3 -c 'import json,sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "core" and m.get("executable"):
        print(m["executable"])'
}

# Inclusive instruction counts per call of the parts the table shows, from one callgrind run.
measure() {
  local bin=$1 name=$2
  echo "callgrind: $name ($bin)" >&2
  valgrind --tool=callgrind --toggle-collect='*my_households*' \
    --callgrind-out-file="$WORK/$name.cg" "$bin" --bench --quick mine >"$WORK/$name.log" 2>"$WORK/$name.err"
  callgrind_annotate --inclusive=yes "$WORK/$name.cg" 2>/dev/null >"$WORK/$name.txt"
  python3 - "$WORK/$name.txt" "$WORK/$name.log" >"$WORK/$name.tsv" <<'PY'
import re, sys
want = {
    "call": r"::my_households \[",
    "step": r":sqlite3_step \[",
    "sorter": r":vdbeSorterSort",
    "get": r":rusqlite::row::Row::get \[",
    "sort": r":core::slice::sort::",
    "malloc": r":malloc \[",
}
found = {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"\s*([\d,]+) \(", line)
    if not m:
        continue
    for key, pat in want.items():
        if key not in found and re.search(pat, line):
            found[key] = int(m.group(1).replace(",", ""))
# The benchmark calls the query once to warm up, then n times.
n = int(re.search(r"(\d+) calls after one warm-up", open(sys.argv[2]).read()).group(1))
for key in want:
    print(f"{key}\t{found.get(key, 0) // (n + 1)}")
PY
}

# One timed run of the `mine` section: "median<TAB>p95" in ms.
timed() {
  "$1" --bench mine 2>/dev/null |
    awk '$1 == "METRIC" && $2 == "my_households_median" { m = $3 }
         $1 == "METRIC" && $2 == "my_households_p95" { p = $3 }
         END { printf "%s\t%s\n", m, p }'
}

echo "building this tree's core benchmark" >&2
NOW_BIN=$(bench_binary . "$TARGET")
cp "$NOW_BIN" "$WORK/core-now"
if [ -n "$BASE" ]; then
  WT="$WORK/base"
  git worktree add --detach "$WT" "$BASE" >/dev/null
  echo "building $BASE's core benchmark" >&2
  if [ ! -d "$TARGET/bench-base/release" ] && [ -d "$TARGET/release" ]; then
    mkdir -p "$TARGET/bench-base"
    cp -r "$TARGET/release" "$TARGET/bench-base/release"
  fi
  BASE_BIN=$(bench_binary "$WT" "$TARGET/bench-base")
  cp "$BASE_BIN" "$WORK/core-base"
fi

for r in $(seq "$ROUNDS"); do
  if [ -n "$BASE" ]; then
    echo "timing: round $r, $BASE" >&2
    timed "$WORK/core-base" >>"$WORK/base.times"
  fi
  echo "timing: round $r, this tree" >&2
  timed "$WORK/core-now" >>"$WORK/now.times"
done
measure "$WORK/core-now" now
[ -z "$BASE" ] || measure "$WORK/core-base" base

python3 - "$WORK" "$BASE" "$(git rev-parse --short HEAD)" "$ROUNDS" >"$OUT" <<'PY'
import sys, datetime, statistics
work, base, head, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def load(name):
    return {k: int(v) for k, v in (l.split("\t") for l in open(f"{work}/{name}.tsv"))}
def times(name):
    return [tuple(float(x) for x in l.split("\t")) for l in open(f"{work}/{name}.times")]
rows = [("`Store::my_households` (whole call)", "call"),
        ("SQLite running the statement (`sqlite3_step`)", "step"),
        ("of which SQLite's sorter (`ORDER BY`: `vdbeSorterSort`)", "sorter"),
        ("typed column reads (`Row::get`)", "get"),
        ("sorting the list in Rust (`slice::sort`)", "sort"),
        ("allocations (`malloc`)", "malloc")]
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
print("## Where \"my households today\" spends its time\n")
print(f"Generated by `scripts/bench-mine.sh {base}` on {when}, source at {head}. "
      "`Store::my_households` as benchmark 5 of the core store calls it (4951 households). "
      "Instructions: the benchmark's quick run under valgrind's callgrind, collecting only inside "
      "the call; inclusive instruction counts (Ir) per call. Wall time: the benchmark's `mine` "
      f"section (100 calls after a warm-up), {rounds} runs of each build"
      + (", alternating" if base else "") + "; the median of the runs' medians and of their p95s.\n")
now = load("now")
tn = times("now")
med = lambda xs: statistics.median(xs)
if base:
    b = load("base")
    tb = times("base")
    print(f"| part | Ir per call at {base} | Ir per call now | change |")
    print("| --- | ---: | ---: | ---: |")
    for label, key in rows:
        change = f"{100 * (now[key] - b[key]) / b[key]:+.0f} %" if b[key] else "new"
        print(f"| {label} | {b[key]:,} | {now[key]:,} | {change} |")
    print()
    print(f"| wall time | at {base} | now |")
    print("| --- | ---: | ---: |")
    print(f"| median (runs: {', '.join(f'{m:.2f}' for m, _ in tb)} / {', '.join(f'{m:.2f}' for m, _ in tn)} ms) "
          f"| {med([m for m, _ in tb]):.2f} ms | {med([m for m, _ in tn]):.2f} ms |")
    print(f"| p95 (runs: {', '.join(f'{p:.2f}' for _, p in tb)} / {', '.join(f'{p:.2f}' for _, p in tn)} ms) "
          f"| {med([p for _, p in tb]):.2f} ms | {med([p for _, p in tn]):.2f} ms |")
    print(f"\nAt {base}, SQLite's sorter (the statement's `ORDER BY`, every row's nine columns carried "
          f"through some 60,000 generic record comparisons) was {100 * b['sorter'] / b['call']:.0f} % of the "
          f"call's instructions, and reading the columns into Rust {100 * b['get'] / b['call']:.0f} % "
          "(one `String` per UUID and per outcome, parsed and dropped). The statement now returns the rows "
          "unsorted and the same order is applied in Rust on small keys (`in_list_order` in "
          "core/src/query.rs; core/tests/my_households.rs compares it with the former `ORDER BY`); the "
          f"call now executes **{abs(100 * (now['call'] - b['call']) / b['call']):.0f} % "
          f"{'fewer' if now['call'] < b['call'] else 'more'}** instructions.")
else:
    print("| part | Ir per call | share of the call |")
    print("| --- | ---: | ---: |")
    for label, key in rows:
        print(f"| {label} | {now[key]:,} | {100 * now[key] / now['call']:.1f} % |")
    print()
    print(f"Wall time: median {med([m for m, _ in tn]):.2f} ms, p95 {med([p for _, p in tn]):.2f} ms.")
PY
echo "wrote $OUT" >&2
