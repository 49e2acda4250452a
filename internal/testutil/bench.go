package testutil

import (
	"fmt"
	"os"
	"testing"
)

// Bench runs t only under `make bench` (O2GO_BENCH=1). Benchmarks compare
// o2go with a baseline measured in the same run, because timings on shared
// machines are too noisy for absolute goals; they never run in `make test`.
func Bench(t testing.TB) {
	t.Helper()
	if os.Getenv("O2GO_BENCH") != "1" {
		t.Skip("benchmark: runs under `make bench` (O2GO_BENCH=1)")
	}
}

// BenchResult is one row of BENCHMARKS.md.
type BenchResult struct {
	Name     string
	O2go     string // o2go's figure, with unit
	Baseline string // the baseline's figure, with what the baseline is
	Ratio    float64
	Goal     string // e.g. ">= 0.80"
	Met      bool
}

// Report prints the result in the line format scripts/bench.sh collects.
// A missed goal is reported, not failed: benchmarks inform, tests decide.
func (r BenchResult) Report(t testing.TB) {
	t.Helper()
	verdict := "met"
	if !r.Met {
		verdict = "MISSED"
	}
	line := fmt.Sprintf("BENCH %s | %s | %s | %.2f | %s | %s", r.Name, r.O2go, r.Baseline, r.Ratio, r.Goal, verdict)
	fmt.Println(line)
	t.Log(line)
}
