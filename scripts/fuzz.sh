#!/usr/bin/env bash
# fuzz.sh [DURATION]: run every Go fuzz target in the module for DURATION each.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-20s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for t in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //' | sort -u); do
		echo "== $pkg $t"
		go test -run '^$' -fuzz "^$t\$" -fuzztime "$dur" "$pkg"
	done
done
