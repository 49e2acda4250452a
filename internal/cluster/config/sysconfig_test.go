package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"o2go/internal/testutil"
)

// debianStyle is laid out like the file Debian's ocfs2-tools writes.
const debianStyle = `#
# O2CB settings, written by the package's configuration script.
#

# O2CB_ENABLED: start on boot
O2CB_ENABLED=false

# O2CB_BOOTCLUSTER: cluster to start
O2CB_BOOTCLUSTER=ocfs2

# O2CB_HEARTBEAT_THRESHOLD: iterations
O2CB_HEARTBEAT_THRESHOLD=31

# O2CB_IDLE_TIMEOUT_MS
O2CB_IDLE_TIMEOUT_MS=30000

# O2CB_KEEPALIVE_DELAY_MS
O2CB_KEEPALIVE_DELAY_MS=2000

# O2CB_RECONNECT_DELAY_MS
O2CB_RECONNECT_DELAY_MS=2000

`

func TestSysconfigParseValues(t *testing.T) {
	in := "# comment\n" +
		"\n" +
		"A=plain\n" +
		"  B='single quoted # not a comment'  # a comment\n" +
		"export C=\"double \\\"quoted\\\" \\$HOME \\\\ \\x\"\n" +
		"D=\n" +
		"E=''\n" +
		"F=a'b c'\"d\"\\ e\n" +
		"G=x#y\n" +
		"H=first\n" +
		"H=last\n" +
		"\texport\tI=tabbed\n" +
		"export=1\n"
	s, err := ParseSysconfig("o2cb", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"A": "plain", "B": "single quoted # not a comment", "C": `double "quoted" $HOME \ \x`,
		"D": "", "E": "", "F": "ab cd e", "G": "x#y", "H": "last", "I": "tabbed", "export": "1",
	}
	for k, v := range want {
		if got, ok := s.Get(k); !ok || got != v {
			t.Errorf("%s = %q, %v; want %q", k, got, ok, v)
		}
	}
	if _, ok := s.Get("Z"); ok {
		t.Error("Z is not set")
	}
	if d := cmp.Diff([]string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "export"}, s.Keys()); d != "" {
		t.Error(d)
	}
	if got := string(s.Format()); got != in {
		t.Errorf("Format changed the file:\n%s", got)
	}
	requireSameAsShell(t, in, want)
}

// requireSameAsShell sources text with bash (the o2cb init script's shell)
// and with sh, and checks that both see the values we parsed.
func requireSameAsShell(t *testing.T, text string, want map[string]string) {
	t.Helper()
	testutil.RequireTools(t, "sh", "bash")
	f := filepath.Join(t.TempDir(), "o2cb")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -e\n. " + f + "\n")
	var keys []string
	for k := range want {
		keys = append(keys, k)
		script.WriteString("printf '%s\\0' \"$" + k + "\"\n")
	}
	for _, shell := range []string{"bash", "sh"} {
		out, err := exec.Command(shell, "-c", script.String()).Output()
		if err != nil {
			t.Fatalf("%s could not source the file: %v\n%s", shell, err, text)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != len(keys) {
			t.Fatalf("%s printed %q", shell, out)
		}
		for i, k := range keys {
			if got[i] != want[k] {
				t.Errorf("%s sees %s=%q, we parsed %q", shell, k, got[i], want[k])
			}
		}
	}
}

func TestSysconfigParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A=$HOME\n", "o2cb:1: A: '$' expansion is not supported"},
		{"A=\"$HOME\"\n", "o2cb:1: A: '$' expansion inside double quotes"},
		{"A=`date`\n", "o2cb:1: A: '`' expansion is not supported"},
		{"A=~/x\n", "o2cb:1: A: '~' expansion"},
		{"A=/x:~/y\n", "o2cb:1: A: '~' expansion"},
		{"\nA=b c\n", "o2cb:2: A: more than one word after '='"},
		{"A=1 B=2\n", "more than one word"},
		{"A=1;B=2\n", "shell operator ';'"},
		{"A=1 && B=2\n", "more than one word"},
		{"A='open\n", "unterminated single quote"},
		{"A=\"open\n", "unterminated double quote"},
		{"A=b\\\n", "backslash at the end of the line"},
		{"A = 1\n", "space before '=' after A"},
		{"[ -f /x ] && . /x\n", "o2cb:1: not a KEY=VALUE assignment"},
		{"1A=x\n", "not a KEY=VALUE assignment"},
		{"export\n", "not a KEY=VALUE assignment"},
		{"A=1\r\n", "o2cb:1: carriage return"},
		{"A=1\x00\n", "NUL"},
		{"A=\"x\"y\"\n", "unterminated double quote"},
	} {
		_, err := ParseSysconfig("o2cb", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSysconfig(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestSysconfigSet(t *testing.T) {
	in := "# keep me\nexport O2CB_IDLE_TIMEOUT_MS=\"30000\"   # tuned for bonding\nO2CB_STACK=o2cb"
	s, err := ParseSysconfig("o2cb", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(VarIdleTimeout, "60000"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(VarFenceMethod, "panic"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("O2GO_NOTE", "it's a value with spaces & $signs"); err != nil {
		t.Fatal(err)
	}
	want := "# keep me\n" +
		"export O2CB_IDLE_TIMEOUT_MS=60000   # tuned for bonding\n" +
		"O2CB_STACK=o2cb\n" +
		"\n" +
		"# O2GO_FENCE_METHOD: how this node fences itself: reset, panic or exit.\n" +
		"O2GO_FENCE_METHOD=panic\n" +
		"\n" +
		"O2GO_NOTE='it'\\''s a value with spaces & $signs'\n"
	if got := string(s.Format()); got != want {
		t.Fatalf("after Set:\n%s\nwant:\n%s", got, want)
	}
	// Setting again replaces in place.
	if err := s.Set("O2GO_NOTE", "x"); err != nil {
		t.Fatal(err)
	}
	if got := string(s.Format()); !strings.HasSuffix(got, "O2GO_NOTE=x\n") || strings.Count(got, "O2GO_NOTE") != 1 {
		t.Fatalf("second Set:\n%s", got)
	}
	for _, bad := range [][2]string{{"1X", "v"}, {"A-B", "v"}, {"A", "two\nlines"}, {"A", "cr\r"}, {"A", "nul\x00"}} {
		if err := s.Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
	}
	s2, err := ParseSysconfig("o2cb", s.Format())
	if err != nil {
		t.Fatalf("our output does not parse: %v", err)
	}
	if v, _ := s2.Get(VarIdleTimeout); v != "60000" {
		t.Fatalf("reparsed %s = %q", VarIdleTimeout, v)
	}
}

func TestSysconfigQuotingAgreesWithShell(t *testing.T) {
	values := map[string]string{
		"V1": "", "V2": "plain", "V3": "two words", "V4": "it's", "V5": `back\slash`, "V6": `"dq"`,
		"V7": "$HOME", "V8": "`cmd`", "V9": "~/x", "V10": "a;b&c|d<e>f(g)", "V11": "#hash", "V12": "tab\there",
		"V13": "ünïcode", "V14": "*.conf", "V15": "'''",
	}
	s := NewSysconfig()
	for k, v := range values {
		if err := s.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out := s.Format()
	s2, err := ParseSysconfig("o2cb", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for k, v := range values {
		if got, _ := s2.Get(k); got != v {
			t.Errorf("%s: wrote %q, read %q", k, v, got)
		}
	}
	requireSameAsShell(t, string(out), values)
}

func TestSettingsDefaultsAndDecode(t *testing.T) {
	s, err := ParseSysconfig("o2cb", []byte(debianStyle))
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Settings()
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSettings()
	want.BootCluster = "ocfs2"
	if d := cmp.Diff(want, st); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}

	in := debianStyle + "O2CB_ENABLED=true\nO2CB_HEARTBEAT_THRESHOLD=61\nO2CB_IDLE_TIMEOUT_MS=\n" +
		"O2GO_HEARTBEAT_INTERVAL_MS=500\nO2GO_FENCE_METHOD=EXIT\nO2GO_CLUSTER_SECRET_FILE='/etc/o2go/secret'\n"
	s, err = ParseSysconfig("o2cb", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	st, err = s.Settings()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || st.Timeouts.HeartbeatThreshold != 61 || st.Timeouts.IdleTimeout != DefaultIdleTimeout ||
		st.Timeouts.HeartbeatInterval != 500*time.Millisecond || st.FenceMethod != FenceExit || st.SecretFile != "/etc/o2go/secret" {
		t.Fatalf("decoded %+v", st)
	}
	if st.Timeouts.KillAckTimeout != 1500*time.Millisecond {
		t.Errorf("unset kill ack timeout is %v, want 3 x the 500 ms interval", st.Timeouts.KillAckTimeout)
	}
	if st.Timeouts.DeadTime() != 30*time.Second {
		t.Errorf("dead time %v, want (61-1) x 500ms", st.Timeouts.DeadTime())
	}

	// Only "true" enables, as in the init script.
	s, _ = ParseSysconfig("o2cb", []byte("O2CB_ENABLED=yes\n"))
	if st, err := s.Settings(); err != nil || st.Enabled {
		t.Errorf("O2CB_ENABLED=yes gives %v, %v; the init script treats it as false", st.Enabled, err)
	}

	// Written back and read again, settings are unchanged.
	out := NewSysconfig()
	if err := out.SetSettings(st); err != nil {
		t.Fatal(err)
	}
	again, err := ParseSysconfig("o2cb", out.Format())
	if err != nil {
		t.Fatal(err)
	}
	st2, err := again.Settings()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(st, st2); d != "" {
		t.Fatalf("settings round trip (-want +got):\n%s", d)
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A=1\nO2CB_IDLE_TIMEOUT_MS=30s\n", "o2cb:2: O2CB_IDLE_TIMEOUT_MS: '30s' is not a decimal number (milliseconds)"},
		{"O2CB_HEARTBEAT_THRESHOLD=-1\n", "o2cb:1: O2CB_HEARTBEAT_THRESHOLD: '-1' is not a decimal number"},
		{"O2CB_HEARTBEAT_THRESHOLD=5\n", "O2CB_HEARTBEAT_THRESHOLD=5 is out of range 7..65535"},
		{"O2CB_IDLE_TIMEOUT_MS=4000\n", "O2CB_IDLE_TIMEOUT_MS=4000 is out of range 5000..4294967294"},
		{"O2CB_KEEPALIVE_DELAY_MS=500\n", "O2CB_KEEPALIVE_DELAY_MS=500 is out of range 1000..4294967294"},
		{"O2CB_RECONNECT_DELAY_MS=1000\n", "O2CB_RECONNECT_DELAY_MS=1000 is out of range 2000..4294967294"},
		{"O2CB_IDLE_TIMEOUT_MS=4294967295\n", "O2CB_IDLE_TIMEOUT_MS=4294967295 is out of range"},
		{"O2CB_KEEPALIVE_DELAY_MS=30000\n", "O2CB_KEEPALIVE_DELAY_MS=30000 must be less than O2CB_IDLE_TIMEOUT_MS=30000"},
		{"O2GO_HEARTBEAT_INTERVAL_MS=50\n", "O2GO_HEARTBEAT_INTERVAL_MS=50 is out of range 100..30000"},
		{"O2GO_KILL_ACK_TIMEOUT_MS=3000\n", "O2GO_KILL_ACK_TIMEOUT_MS=3000 is out of range: from 4000 (2 heartbeat intervals) to below the dead time of 60000 ms"},
		{"O2GO_KILL_ACK_TIMEOUT_MS=60000\n", "O2GO_KILL_ACK_TIMEOUT_MS=60000 is out of range"},
		{"O2GO_FENCE_METHOD=halt\n", "o2cb:1: O2GO_FENCE_METHOD=halt is not a fence method; use reset, panic or exit"},
		{"O2CB_STACK=pcmk\n", "O2CB_STACK=pcmk: o2go implements only the o2cb stack"},
		{"O2CB_BOOTCLUSTER=my-cluster\n", "O2CB_BOOTCLUSTER: cluster name 'my-cluster'"},
		{"O2GO_CLUSTER_SECRET_FILE=secret\n", "O2GO_CLUSTER_SECRET_FILE=secret is not an absolute path"},
	} {
		s, err := ParseSysconfig("o2cb", []byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Settings()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: Settings() = %v, want %q", tc.in, err, tc.want)
		}
	}
	// Kill blocks can be turned off.
	s, _ := ParseSysconfig("o2cb", []byte("O2GO_KILL_ACK_TIMEOUT_MS=0\n"))
	if st, err := s.Settings(); err != nil || st.Timeouts.KillBlocks() {
		t.Errorf("O2GO_KILL_ACK_TIMEOUT_MS=0: %v, %v", st.Timeouts.KillBlocks(), err)
	}
}

func TestSysconfigPath(t *testing.T) {
	root := t.TempDir()
	check := func(want string) {
		t.Helper()
		if got := SysconfigPath(root); got != filepath.Join(root, want) {
			t.Errorf("SysconfigPath = %s, want %s", got, want)
		}
	}
	check("etc/default/o2cb") // nothing: Debian's place
	os.MkdirAll(filepath.Join(root, "etc/sysconfig"), 0o755)
	check("etc/sysconfig/o2cb") // a sysconfig directory: Red Hat's place
	os.MkdirAll(filepath.Join(root, "etc/default"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/default/o2cb"), nil, 0o644)
	check("etc/default/o2cb") // an existing Debian file wins over an empty sysconfig dir
	os.WriteFile(filepath.Join(root, "etc/sysconfig/o2cb"), nil, 0o644)
	check("etc/sysconfig/o2cb") // an existing sysconfig file wins
}

func TestLoadSettings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "o2cb")
	st, err := LoadSettings(path)
	if err != nil || st != DefaultSettings() {
		t.Fatalf("missing file: %+v, %v; want defaults", st, err)
	}
	if _, err := LoadSysconfig(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadSysconfig(missing) = %v", err)
	}
	s, _ := ParseSysconfig(path, []byte(debianStyle))
	s.Set(VarHeartbeatThreshold, "62")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err = LoadSettings(path)
	if err != nil || st.Timeouts.HeartbeatThreshold != 62 {
		t.Fatalf("%+v, %v", st, err)
	}
	os.WriteFile(path, []byte("O2CB_HEARTBEAT_THRESHOLD=$X\n"), 0o644)
	if _, err := LoadSettings(path); err == nil || !strings.HasPrefix(err.Error(), path+":1:") {
		t.Fatalf("malformed: %v", err)
	}
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	os.WriteFile(path, []byte("0123456789abcdefXYZ\n\n"), 0o600)
	got, err := LoadSecret(path)
	if err != nil || string(got) != "0123456789abcdefXYZ" {
		t.Fatalf("%q, %v", got, err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadSecret(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable secret: %v", err)
	}
	os.WriteFile(path+"2", []byte("short\n"), 0o600)
	if _, err := LoadSecret(path + "2"); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short secret: %v", err)
	}
	os.WriteFile(path+"3", bytes.Repeat([]byte("x"), 70000), 0o600)
	if _, err := LoadSecret(path + "3"); err == nil || !strings.Contains(err.Error(), "larger than 64 KiB") {
		t.Fatalf("huge secret: %v", err)
	}
	if _, err := LoadSecret(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing secret: %v", err)
	}
	if _, err := LoadSecret(dir); err == nil {
		t.Fatal("a directory is not a secret")
	}
}
