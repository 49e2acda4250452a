package base

import "fmt"

// AssertionError is what a failed invariant panics with: a bug in o2go, never
// a property of the input (bad input is an error value, not a panic).
type AssertionError struct{ Msg string }

func (e *AssertionError) Error() string { return "o2go invariant violated: " + e.Msg }

// Assert panics with an AssertionError when cond is false. Use it for cheap
// checks of o2go's own state; use Enabled to guard costly ones.
func Assert(cond bool, format string, args ...any) {
	if !cond {
		panic(&AssertionError{Msg: fmt.Sprintf(format, args...)})
	}
}
