#!/usr/bin/env bash
# Runs the benchmarks and regenerates docs/benchmarks.md from their output.
#
# Usage: scripts/bench.sh [--quick] [NAME...]
#   NAME: visit import search mine apply (the core benchmarks to run), sync (the sync server's
#   benchmarks), dashboard (the command centre at province scale), scale (SQLite and
#   PostgreSQL from one province to 10.2 million residents: the fragment docs/bench/scale.md
#   and its plot; about an hour; `postgres` is its old name), instances (several PostgreSQL
#   instances pushing at once, docs/bench/instances.md); default all.
#   --quick: smaller sizes, a smoke test; the page then says so and is not for the record.
#   DOORSTEP_BENCH_PRAGMAS='cache_size=-65536' tries extra SQLite pragmas (a what-if; the page
#   says so).
#
# How the page is put together: each `section_*` function below runs one suite, prints its
# Markdown details on stdout and appends its rows of the summary table ("| what | goal |
# measured | ratio | met? |") to "$ROWS". Later suites (server, ffi size...) add a function
# here and a call in main, or leave a generated fragment docs/bench/NAME.md (details, included
# as is) with an optional docs/bench/NAME.rows (summary rows).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=docs/benchmarks.md
# --page-only: run nothing; rebuild the page from the last raw outputs of the core, sync and
# dashboard suites (target/bench-*.txt) and the fragments in docs/bench/ (scale, instances,
# FFI size). For when one long suite was rerun on its own.
PAGE_ONLY=""
# Suites not named in a run that names some: reprinted from their last raw output, if any.
REPRINT_SYNC=""
REPRINT_DASH=""
REUSED=()
ARGS=()
for a in "$@"; do
  if [ "$a" = --page-only ]; then PAGE_ONLY=1; else ARGS+=("$a"); fi
done
set -- ${ARGS[@]+"${ARGS[@]}"}
TARGET="${CARGO_TARGET_DIR:-target}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROWS="$WORK/rows.md"
ENVF="$WORK/env.tsv"
: >"$ROWS"
: >"$ENVF"

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# The core benchmarks: core/benches/core.rs.
section_core() {
  local raw="$TARGET/bench-core.txt"
  mkdir -p "$TARGET"
  echo "running: cargo bench -p doorstep-core --bench core -- $*" >&2
  if [ -n "$PAGE_ONLY" ]; then
    [ -f "$raw" ] || { echo "bench.sh --page-only: no $raw (run the core suite once)" >&2; exit 1; }
    local at from
    at=$(date -u -r "$raw" '+%Y-%m-%d %H:%M UTC')
    # Sections a partial run carried over keep the date they were measured (FROM lines).
    # Grouped by date, in the order the dates first appear: "sections 1, 2 of D1, section 3
    # of D2, the others of".
    from=$(awk -F'\t' '$1 == "FROM" {
        if (!($3 in secs)) { order[++k] = $3; secs[$3] = $2; count[$3] = 1 }
        else { secs[$3] = secs[$3] ", " $2; count[$3]++ } }
      END { for (i = 1; i <= k; i++) { d = order[i]
              printf "%s %s of %s, ", (count[d] > 1 ? "sections" : "section"), secs[d], d }
            if (k) printf "the others of" }' "$raw")
    REUSED+=("core (${from:+$from }$at)")
  else
    cargo bench -p doorstep-core --bench core -- "$@" >"$WORK/core-run.txt"
    local names
    names=$(printf '%s\n' "$@" | grep -v -- '^-' || true)
    if [ -n "$names" ] && ! printf '%s\n' "$@" | grep -qx -- --quick && [ -f "$raw" ] &&
      ! grep -q -- '--quick' "$raw"; then
      # Some of the core benchmarks, named: the sections, summary rows and metrics of the
      # others are carried over from the last full run's raw output, so the page keeps them.
      local kept
      kept=$(merge_core "$raw" "$WORK/core-run.txt" "$WORK/core-merged.txt" \
        "$(date -u -r "$raw" '+%Y-%m-%d %H:%M UTC')")
      [ -z "$kept" ] || REUSED+=("core $kept")
      mv "$WORK/core-merged.txt" "$raw"
    else
      mv "$WORK/core-run.txt" "$raw"
    fi
  fi
  cp "$raw" "$WORK/core.txt"
  grep -P '^ENV\t' "$raw" | cut -f2- >>"$ENVF" || true
  grep -P '^SUMMARY\t' "$raw" |
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }' >>"$ROWS"
  echo "## Core store (\`doorstep-core\`)"
  echo
  # The bench's Markdown, without its environment section (the page header has it) and with
  # its headings one level down.
  grep -v -E '^(SUMMARY|ENV|FROM)	|^METRIC ' "$raw" |
    awk '/^## Environment/ { skip = 1; next }
         /^## / { skip = 0 }
         !skip { sub(/^## /, "### "); print }'
  echo "### Raw metrics"
  echo
  echo '```'
  grep '^METRIC ' "$raw"
  echo '```'
  echo
}

# Merge the raw output of a run of some core benchmarks ($2) into that of an earlier run ($1,
# written at $4), writing $3: the new run's sections (`## N. ...`), environment and "Whole run"
# line; the earlier run's sections the new one lacks, each with a `FROM<TAB>N<TAB>when` line;
# summary rows and metrics replaced by name (a row's "what", a metric's name), the earlier ones
# kept otherwise. Prints which sections were kept and from when, e.g. "sections 1-4
# (2026-12-06 22:50 UTC)".
merge_core() {
  python3 - "$@" <<'PY'
import re, sys
old, new = (open(p, encoding="utf-8").read().splitlines() for p in sys.argv[1:3])
out, written = sys.argv[3], sys.argv[4]
def parse(lines):
    sections, order, summary, metrics, env, whole, since = {}, [], [], [], [], None, {}
    cur = None
    for l in lines:
        if l.startswith("FROM\t"):
            _, n, when = l.split("\t", 2); since[int(n)] = when; continue
        if l.startswith("SUMMARY\t"): summary.append(l); continue
        if l.startswith("METRIC "): metrics.append(l); continue
        if l.startswith("ENV\t"): env.append(l); continue
        if l.startswith("Whole run:"): whole = l; cur = None; continue
        if l.startswith("## "):
            m = re.match(r"## (\d+)\.", l)
            cur = int(m.group(1)) if m else l
            sections[cur] = []; order.append(cur)
        if cur is not None: sections[cur].append(l)
    return sections, order, summary, metrics, env, whole, since
def spans(ns):
    runs = []
    for n in ns:
        if runs and n == runs[-1][1] + 1: runs[-1][1] = n
        else: runs.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)
os_, oo, osum, omet, _, _, osince = parse(old)
ns, no, nsum, nmet, nenv, nwhole, _ = parse(new)
kept = sorted(k for k in oo if isinstance(k, int) and k not in ns)
heads = [k for k in no if not isinstance(k, int)]
nums = sorted(set(k for k in no if isinstance(k, int)) | set(kept))
lines = []
for k in heads + nums:
    lines += (ns.get(k) or os_.get(k))
rerun = sorted(k for k in no if isinstance(k, int))
if nwhole and kept and rerun:
    nwhole = nwhole.rstrip(".") + (" (section " if len(rerun) == 1 else " (sections ") + spans(rerun) + " only)."
lines.append(nwhole or "")
lines.append("")
lines += nenv
when = {k: osince.get(k, written) for k in kept}
lines += [f"FROM\t{k}\t{when[k]}" for k in kept]
def merge(olds, news, key):
    got = {key(l): l for l in news}
    merged = [got.pop(key(l), l) for l in olds]
    return merged + [l for l in news if key(l) in got]
lines += merge(osum, nsum, lambda l: l.split("\t")[1])
lines += merge(omet, nmet, lambda l: l.split()[1])
open(out, "w", encoding="utf-8").write("\n".join(lines) + "\n")
print(", ".join(("section " if len(ks) == 1 else "sections ") + spans(ks) + f" ({w})"
                for w in sorted(set(when.values()))
                for ks in [[k for k in kept if when[k] == w]]))
PY
}

# The sync server benchmarks: server/benches/sync.rs (ingest, bytes per operation against
# automerge, one device's day sync). Takes only --quick.
section_sync() {
  local raw="$TARGET/bench-sync.txt"
  mkdir -p "$TARGET"
  echo "running: cargo bench -p doorstep-server --bench sync -- $*" >&2
  if [ -n "$PAGE_ONLY$REPRINT_SYNC" ]; then
    [ -f "$raw" ] || { echo "bench.sh --page-only: no $raw (run the sync suite once)" >&2; exit 1; }
    REUSED+=("sync ($(date -u -r "$raw" '+%Y-%m-%d %H:%M UTC'))")
  else
    cargo bench -p doorstep-server --bench sync -- "$@" >"$raw"
  fi
  cp "$raw" "$WORK/sync.txt"
  grep -P '^ENV\t' "$raw" | cut -f2- >>"$ENVF" || true
  grep -P '^SUMMARY\t' "$raw" |
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }' >>"$ROWS"
  echo "## Sync server (\`doorstep-server\`)"
  echo
  grep -v -E '^(SUMMARY|ENV)	|^METRIC ' "$raw"
  echo "### Raw metrics"
  echo
  echo '```'
  grep '^METRIC ' "$raw"
  echo '```'
  echo
}

# --- Scale (issue #6): regenerates docs/bench/scale.md and docs/bench/scale.svg (the fragment
# is included below with the other fragments): server/benches/scale.rs, SQLite and a throwaway
# PostgreSQL cluster with fsync on, from one province (the dashboard suite's cached store,
# built first if missing) to 32 provinces (10.2 million residents). About an hour. Runs when
# `scale` (or its old name `postgres`) is named or no name is given.
section_scale() {
  local state="$WORK/pg.env" url
  if [ ! -f "$TARGET/bench-dashboard/province-319284-v2.db" ] && ! printf '%s\n' "$@" | grep -qx -- --quick; then
    echo "scale: building the dashboard's province-scale store first" >&2
    cargo bench -p doorstep-server --bench dashboard >/dev/null
  fi
  url=$(DOORSTEP_PG_STATE="$state" DOORSTEP_PG_FSYNC=on scripts/pg.sh start | tail -n 1)
  echo "running: cargo bench -p doorstep-server --bench scale -- $*" >&2
  local rc=0
  DOORSTEP_BENCH_DATABASE_URL="$url" cargo bench -p doorstep-server --bench scale -- \
    --out "$WORK/scale" "$@" >/dev/null || rc=$?
  DOORSTEP_PG_STATE="$state" scripts/pg.sh stop
  [ "$rc" = 0 ] || return "$rc"
  mkdir -p docs/bench
  rm -f docs/bench/postgres.md
  cp "$WORK/scale/scale.md" "$WORK/scale/scale.svg" docs/bench/
}
# Several PostgreSQL instances pushing at once (server/benches/instances.rs): the fragment
# docs/bench/instances.md. A few minutes. Runs when `instances` is named or no name is given.
section_instances() {
  local state="$WORK/pg-instances.env" url
  url=$(DOORSTEP_PG_STATE="$state" DOORSTEP_PG_FSYNC=on scripts/pg.sh start | tail -n 1)
  echo "running: cargo bench -p doorstep-server --bench instances -- $*" >&2
  local rc=0
  DOORSTEP_BENCH_DATABASE_URL="$url" cargo bench -p doorstep-server --bench instances -- "$@" \
    >"$WORK/instances.md" || rc=$?
  DOORSTEP_PG_STATE="$state" scripts/pg.sh stop
  [ "$rc" = 0 ] || return "$rc"
  mkdir -p docs/bench
  cp "$WORK/instances.md" docs/bench/instances.md
}
# --- end scale ---
# The command centre at province scale: server/benches/dashboard.rs (every page's p50/p95,
# the daily XLSX, the snapshot build as the baseline). Takes only --quick.
section_dashboard() {
  local raw="$TARGET/bench-dashboard.txt"
  mkdir -p "$TARGET"
  echo "running: cargo bench -p doorstep-server --bench dashboard -- $*" >&2
  if [ -n "$PAGE_ONLY$REPRINT_DASH" ]; then
    [ -f "$raw" ] || { echo "bench.sh --page-only: no $raw (run the dashboard suite once)" >&2; exit 1; }
    REUSED+=("dashboard ($(date -u -r "$raw" '+%Y-%m-%d %H:%M UTC'))")
  else
    cargo bench -p doorstep-server --bench dashboard -- "$@" >"$raw"
  fi
  grep -P '^SUMMARY\t' "$raw" |
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }' >>"$ROWS"
  grep -v -E '^(SUMMARY|ENV)	|^METRIC ' "$raw"
  echo "### Raw metrics"
  echo
  echo '```'
  grep '^METRIC ' "$raw"
  echo '```'
  echo
}

# Fragments other suites generated: docs/bench/*.md (details) and docs/bench/*.rows (rows).
section_fragments() {
  local f
  shopt -s nullglob
  for f in docs/bench/*.md; do
    # Pictures beside a fragment are linked from docs/benchmarks.md through bench/.
    sed -E 's#\]\(([A-Za-z0-9_-]+\.svg)\)#](bench/\1)#' "$f"
    echo
    if [ -f "${f%.md}.rows" ]; then
      grep '^|' "${f%.md}.rows" >>"$ROWS" || true
    fi
  done
  shopt -u nullglob
}

env_value() {
  awk -F'\t' -v k="$1" '$1 == k { print $2; exit }' "$ENVF"
}

main() {
  local details="$WORK/details.md"
  # Split the arguments: options go to every suite, `sync` selects the sync suite, other names
  # the core benchmarks; no name means every suite.
  local core_args=() sync_args=() want_core=1 want_sync=1 want_dash=1 want_pg=1 want_inst=1 a
  for a in "$@"; do
    case "$a" in
      -*) core_args+=("$a"); sync_args+=("$a") ;;
      sync) want_sync=2 ;;
      dashboard) want_dash=2 ;;
      postgres | scale) want_pg=2 ;;
      instances) want_inst=2 ;;
      *) want_core=2; core_args+=("$a") ;;
    esac
  done
  # Naming suites runs only those; naming none runs all.
  if [ "$want_core$want_sync$want_dash$want_pg$want_inst" != 11111 ]; then
    [ "$want_core" = 2 ] || want_core=0
    [ "$want_sync" = 2 ] || want_sync=0
    [ "$want_dash" = 2 ] || want_dash=0
    [ "$want_pg" = 2 ] || want_pg=0
    [ "$want_inst" = 2 ] || want_inst=0
  fi
  if [ -n "$PAGE_ONLY" ]; then want_pg=0; want_inst=0; fi
  # A suite not run this time keeps its place on the page when an earlier run left its raw
  # output (target/bench-*.txt): reprinted as it was, and the header says so.
  if [ -z "$PAGE_ONLY" ]; then
    if [ "$want_sync" = 0 ] && [ -f "$TARGET/bench-sync.txt" ]; then REPRINT_SYNC=1; want_sync=1; fi
    if [ "$want_dash" = 0 ] && [ -f "$TARGET/bench-dashboard.txt" ]; then REPRINT_DASH=1; want_dash=1; fi
  fi
  # The scale suite writes a fragment (docs/bench/scale.md) that section_fragments
  # folds in, as it does the FFI size fragment.
  if [ "$want_pg" != 0 ]; then section_scale ${sync_args[@]+"${sync_args[@]}"} >&2; fi
  if [ "$want_inst" != 0 ]; then section_instances ${sync_args[@]+"${sync_args[@]}"} >&2; fi
  {
    if [ "$want_core" != 0 ]; then section_core ${core_args[@]+"${core_args[@]}"}; fi
    if [ "$want_sync" != 0 ]; then section_sync ${sync_args[@]+"${sync_args[@]}"}; fi
    if [ "$want_dash" != 0 ]; then section_dashboard ${sync_args[@]+"${sync_args[@]}"}; fi
    section_fragments
  } >"$details"

  local page="$WORK/page.md"
  local commit
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    commit="$commit plus uncommitted changes"
  fi
  {
    echo "# Benchmarks"
    echo
    echo "<!-- Generated by scripts/bench.sh: do not edit by hand; run it again. -->"
    echo
    echo "Generated by \`scripts/bench.sh${*:+ $*}${PAGE_ONLY:+ --page-only}\` on $(date -u '+%Y-%m-%d %H:%M UTC'), source at $commit."
    if [ -n "$PAGE_ONLY" ]; then
      local reused
      reused=$(printf '%s, ' "${REUSED[@]}")
      echo "Nothing was rerun for this page: the sections of ${reused%, } are reprinted from"
      echo "their last raw outputs (target/bench-*.txt), and the fragments from docs/bench/ as they stand"
      echo "(each fragment says when and how it was generated)."
    elif [ "${#REUSED[@]}" -gt 0 ]; then
      local reused
      reused=$(printf '%s, ' "${REUSED[@]}")
      echo "Not rerun for this page: ${reused%, }, reprinted from their last raw outputs"
      echo "(target/bench-*.txt)."
    fi
    echo "Regenerate with \`scripts/bench.sh\` (about an hour: five minutes for the core, sync and"
    echo "dashboard suites, plus ten the first time for the dashboard's province-scale store, cached"
    echo "in target/bench-dashboard, and the rest for the scale suite; it runs"
    echo "\`cargo bench -p doorstep-core --bench core\`, \`cargo bench -p doorstep-server --bench sync\`,"
    echo "\`cargo bench -p doorstep-server --bench dashboard\` and \`--bench scale\` and rewrites this page)."
    echo
    echo "Every number is a median or a percentile of repeated runs on files in a temporary"
    echo "directory (real fsync); each baseline is measured in the same run, interleaved where it"
    echo "can be, so machine noise hits both. The machine is small and shared: compare ratios"
    echo "more than absolute times."
    echo
    echo "| machine | |"
    echo "| --- | --- |"
    echo "| CPU | $(env_value cpu), $(env_value nproc) cores |"
    echo "| OS | $(env_value os) |"
    echo "| Rust | $(env_value rustc) |"
    echo "| SQLite | $(env_value sqlite) (in the core suite's last run; SQLite3 Multiple Ciphers since ADR 0008 was revisited on 2026-12-07, rusqlite's bundled SQLCipher before) |"
    echo "| temp files on | $(env_value tmpfs) |"
    echo "| build | $(env_value profile) |"
    if [ -n "${DOORSTEP_BENCH_PRAGMAS:-}" ]; then
      echo "| extra pragmas | **\`$DOORSTEP_BENCH_PRAGMAS\`** (what-if; not the store's configuration) |"
    fi
    case " $* " in
      *" --quick "*) echo "| mode | **--quick**: smaller sizes, a smoke test, not for the record |" ;;
    esac
    echo
    echo "## Summary"
    echo
    echo "| what | goal | measured (median/p99 or ops/s) | ratio to baseline | met? |"
    echo "| --- | --- | --- | --- | --- |"
    cat "$ROWS"
    echo
    cat "$details"
  } >"$page"
  mkdir -p "$(dirname "$OUT")"
  cat "$page" >"$OUT"
  echo "wrote $OUT" >&2
}

main "$@"
