#!/usr/bin/env bash
# bench.sh: run o2go's benchmarks and record them in BENCHMARKS.md.
#
# Every benchmark is a Go test named TestBench* that runs only when
# O2GO_BENCH=1. It measures o2go and a baseline in the same run (raw device
# reads, FUSE loopback, the real tools, loopback TCP...) and prints one line
#   BENCH <name> | <o2go result> | <baseline result> | <ratio> | <goal> | <verdict>
# which this script collects into the results table of BENCHMARKS.md.
# Usage: scripts/bench.sh [go test -run regexp]
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-'^TestBench'}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "== running benchmarks ($filter); this takes a few minutes" >&2
O2GO_BENCH=1 go test -count=1 -timeout 60m -run "$filter" -v ./... 2>&1 | tee "$out" | grep -E '^(BENCH|--- FAIL|FAIL|ok )' >&2 || true
if grep -q -- '--- FAIL' "$out"; then
	echo "bench: some benchmarks failed (see above)" >&2
fi
{
	echo "| benchmark | o2go | baseline | ratio | goal | verdict |"
	echo "|---|---|---|---|---|---|"
	grep -h '^BENCH ' "$out" | sed 's/^BENCH /| /; s/$/ |/'
} > bench-results.md.tmp
python3 - "$out" <<'PY'
import re, sys, datetime, subprocess
table = open("bench-results.md.tmp").read()
try:
    doc = open("BENCHMARKS.md").read()
except FileNotFoundError:
    doc = "# Benchmarks\n\n<!-- results -->\n<!-- /results -->\n"
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
stamp = f"Last run: {datetime.date.today()} at commit {rev} (`make bench`).\n\n"
new = re.sub(r"<!-- results -->.*<!-- /results -->", "<!-- results -->\n" + stamp + table + "<!-- /results -->", doc, flags=re.S)
open("BENCHMARKS.md", "w").write(new)
PY
rm -f bench-results.md.tmp
cat BENCHMARKS.md | sed -n '/<!-- results -->/,/<!-- \/results -->/p'
