package config

import (
	"bytes"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseClusterConf: Parse never panics, and what it accepts formats to a
// file that parses to the same configuration, without warnings, and formats
// the same again.
func FuzzParseClusterConf(f *testing.F) {
	if data, err := os.ReadFile("testdata/o2cb-webcluster.conf"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(goodCluster + goodNode))
	f.Add([]byte("# c\ncluster:\n  name = a\n\tnode_count = 0\n\theartbeat_mode = GLOBAL\n\nheartbeat:\n\tregion = 0123456789abcdef0123456789ABCDEF\n\tcluster = a"))
	f.Add([]byte("cluster:\r\n"))
	f.Add([]byte("o2go:\n\tx = y\n"))
	for _, odd := range oddFiles {
		f.Add([]byte(odd.text))
	}
	f.Add([]byte("cluster:\n\tname = a\\\n\\\n\tnode_count = 1\\"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz", data)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config with an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v\n%q", err, data)
		}
		if len(c.Warnings) > maxReported+1 {
			t.Fatalf("%d warnings", len(c.Warnings))
		}
		for _, w := range c.Warnings {
			if w.File != "fuzz" || w.Msg == "" {
				t.Fatalf("warning without its file or text: %+v", w)
			}
		}
		out := c.Format()
		c2, err := Parse("formatted", out)
		if err != nil {
			t.Fatalf("our output does not parse: %v\ninput %q\noutput %q", err, data, out)
		}
		if len(c2.Warnings) != 0 {
			t.Fatalf("our output is odd: %q\ninput %q\noutput %q", c2.Warnings, data, out)
		}
		if d := cmp.Diff(c.Clusters, c2.Clusters, ignoreLines); d != "" {
			t.Fatalf("round trip changed the config:\n%s", d)
		}
		if !bytes.Equal(c2.Format(), out) {
			t.Fatalf("Format is not stable for %q", data)
		}
		for i := range c.Clusters {
			cl := &c.Clusters[i]
			_ = cl.List(true) + cl.List(false)
			if _, err := cl.MarshalJSON(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzParseSysconfig: ParseSysconfig never panics; what it accepts formats
// back to the same bytes, decodes to settings without panicking, and
// settings that validate survive being written and read again.
func FuzzParseSysconfig(f *testing.F) {
	f.Add([]byte(debianStyle))
	f.Add([]byte("export A=\"x \\\"y\\\"\" # c\nB='q'\\''s'\nC=a\\ b\nO2GO_FENCE_METHOD=Panic\nO2CB_IDLE_TIMEOUT_MS=60000"))
	f.Add([]byte("A=$X\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSysconfig("fuzz", data)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Format(), data) {
			t.Fatalf("Format changed %q into %q", data, s.Format())
		}
		for _, k := range s.Keys() {
			v, _ := s.Get(k)
			// Re-setting a value rewrites it quoted our way; it must read back.
			s2, _ := ParseSysconfig("fuzz", data)
			if err := s2.Set(k, v); err != nil {
				t.Fatalf("Set(%q, %q): %v", k, v, err)
			}
			s3, err := ParseSysconfig("reset", s2.Format())
			if err != nil {
				t.Fatalf("after Set(%q, %q): %v\n%q", k, v, err, s2.Format())
			}
			if got, _ := s3.Get(k); got != v {
				t.Fatalf("Set(%q, %q) reads back %q", k, v, got)
			}
		}
		st, err := s.Settings()
		if err != nil {
			return
		}
		out := NewSysconfig()
		if err := out.SetSettings(st); err != nil {
			t.Fatal(err)
		}
		back, err := ParseSysconfig("settings", out.Format())
		if err != nil {
			t.Fatal(err)
		}
		st2, err := back.Settings()
		if err != nil || st2 != st {
			t.Fatalf("settings round trip: %+v, %v; want %+v", st2, err, st)
		}
	})
}

// FuzzSysconfigSet: any one-line value written with Set reads back as is.
func FuzzSysconfigSet(f *testing.F) {
	for _, v := range []string{"", "plain", "it's", `a\b`, "$x", "two words", "#", "~"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s := NewSysconfig()
		if err := s.Set("V", v); err != nil {
			if !bytes.ContainsAny([]byte(v), "\n\r\x00") {
				t.Fatalf("Set refused %q: %v", v, err)
			}
			return
		}
		back, err := ParseSysconfig("set", s.Format())
		if err != nil {
			t.Fatalf("Set(%q) wrote a file that does not parse: %v\n%q", v, err, s.Format())
		}
		if got, _ := back.Get("V"); got != v {
			t.Fatalf("Set(%q) reads back %q", v, got)
		}
	})
}
