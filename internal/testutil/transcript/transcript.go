// Package transcript runs golden transcripts for tests of the pure protocol
// cores (the heartbeat, link and quorum state machines): a file of commands,
// each followed by the output it must produce, in etcd-io/raft's datadriven
// style. `go test -rewrite` records the current output instead.
package transcript

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden transcripts in testdata/")

// step is one command of a transcript file and its expected output.
type step struct {
	line int
	cmd  string
	want string
}

// Run reads a transcript — blocks of "command\n----\noutput\n" separated
// by blank lines, '#' lines are comments — runs each command through do and
// compares the output. With -rewrite the file is regenerated.
func Run(t *testing.T, path string, do func(cmd string) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out.WriteString(l + "\n")
			continue
		}
		c := step{line: i + 1, cmd: l}
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s:%d: command without ---- line", path, c.line)
		}
		var want []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		c.want = strings.Join(want, "\n")
		got := strings.TrimRight(do(c.cmd), "\n")
		if got != c.want && !*rewrite {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", filepath.Base(path), c.line, c.cmd, got, c.want)
		}
		out.WriteString(c.cmd + "\n----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
		out.WriteString("\n")
	}
	if *rewrite {
		s := strings.TrimRight(out.String(), "\n") + "\n"
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
