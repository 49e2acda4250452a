package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SysconfigPath returns the o2cb sysconfig file the o2cb init script would
// use under root ("/" on a real system): /etc/sysconfig/o2cb if it exists,
// else /etc/default/o2cb if it exists, else /etc/sysconfig/o2cb when
// /etc/sysconfig is a directory, else /etc/default/o2cb.
func SysconfigPath(root string) string {
	redhat := filepath.Join(root, "etc/sysconfig/o2cb")
	debian := filepath.Join(root, "etc/default/o2cb")
	if _, err := os.Stat(redhat); err == nil {
		return redhat
	}
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	if st, err := os.Stat(filepath.Join(root, "etc/sysconfig")); err == nil && st.IsDir() {
		return redhat
	}
	return debian
}

// Sysconfig is an o2cb sysconfig file: a shell fragment of KEY=VALUE lines
// that the o2cb init script sources. It keeps every line as written, so
// Format returns the parsed bytes and Set rewrites only the value it
// changes; comments and variables it does not know survive.
type Sysconfig struct {
	file           string
	lines          []sysLine
	noFinalNewline bool
}

// sysLine is one line; key is "" for blank lines and comments.
type sysLine struct {
	text             string
	key, value       string
	valStart, valEnd int // the value's bytes in text, to replace on Set
}

// ParseSysconfig reads a sysconfig file. file names it in error messages.
// It accepts what such files are made of — blank lines, comments, and
// assignments KEY=VALUE, optionally after "export", with single or double
// quotes and backslash escapes, and a trailing comment — and refuses what it
// cannot evaluate without running a shell: $ and ` expansions, commands,
// several words or several assignments on a line, quotes across lines.
// A variable assigned twice has its last value, as in the shell.
func ParseSysconfig(file string, data []byte) (*Sysconfig, error) {
	p := &problems{file: file}
	s := &Sysconfig{file: file}
	text := string(data)
	if text != "" && !strings.HasSuffix(text, "\n") {
		s.noFinalNewline = true
		text += "\n"
	}
	if text != "" {
		text = text[:len(text)-1]
		for i, ln := range strings.Split(text, "\n") {
			l, err := parseShellLine(ln)
			if err != nil {
				p.add(i+1, "%v", err)
				continue
			}
			s.lines = append(s.lines, l)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewSysconfig returns a sysconfig file with only a header comment, for a
// node that has none yet.
func NewSysconfig() *Sysconfig {
	s := &Sysconfig{}
	for _, ln := range []string{
		"#",
		"# Configuration of the O2CB cluster stack, read at startup by the o2cb",
		"# init script and by o2go. O2GO_* variables are o2go's own; O2CB ignores",
		"# them. See o2cb.sysconfig(5).",
		"#",
	} {
		s.lines = append(s.lines, sysLine{text: ln})
	}
	return s
}

// LoadSysconfig reads and parses the sysconfig file at path. A missing file
// is an error matching fs.ErrNotExist; LoadSettings treats it as all
// defaults.
func LoadSysconfig(path string) (*Sysconfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSysconfig(path, data)
}

// Save atomically replaces path with s (see the package doc); a new file
// gets mode 0644, like the init script's.
func (s *Sysconfig) Save(path string) error {
	return writeFileAtomic(path, s.Format(), 0o644)
}

// Format returns the file's bytes.
func (s *Sysconfig) Format() []byte {
	var b strings.Builder
	for i, l := range s.lines {
		b.WriteString(l.text)
		if i < len(s.lines)-1 || !s.noFinalNewline {
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}

// Get returns the value of key and whether the file assigns it.
func (s *Sysconfig) Get(key string) (string, bool) {
	if i := s.last(key); i >= 0 {
		return s.lines[i].value, true
	}
	return "", false
}

// line returns the 1-based line of key's effective assignment, or 0.
func (s *Sysconfig) line(key string) int { return s.last(key) + 1 }

func (s *Sysconfig) last(key string) int {
	for i := len(s.lines) - 1; i >= 0; i-- {
		if s.lines[i].key == key {
			return i
		}
	}
	return -1
}

// Keys returns the variables the file assigns, in order of first assignment.
func (s *Sysconfig) Keys() []string {
	var keys []string
	seen := map[string]bool{}
	for _, l := range s.lines {
		if l.key != "" && !seen[l.key] {
			seen[l.key] = true
			keys = append(keys, l.key)
		}
	}
	return keys
}

// Set assigns value to key: in place on the line that assigns it now
// (keeping any "export" and trailing comment), else on a new line at the end,
// after a comment that says what the variable is when it is one o2go knows.
func (s *Sysconfig) Set(key, value string) error {
	if !isShellName(key) {
		return fmt.Errorf("'%s' is not a shell variable name", key)
	}
	if strings.ContainsAny(value, "\n\r\x00") {
		return fmt.Errorf("value of %s has a newline, carriage return or NUL byte; sysconfig values are one line", key)
	}
	q := shellQuote(value)
	if i := s.last(key); i >= 0 {
		l := &s.lines[i]
		l.text = l.text[:l.valStart] + q + l.text[l.valEnd:]
		l.valEnd = l.valStart + len(q)
		l.value = value
		return nil
	}
	if n := len(s.lines); n > 0 && strings.TrimSpace(s.lines[n-1].text) != "" {
		s.lines = append(s.lines, sysLine{})
	}
	if doc := varDoc(key); doc != "" {
		s.lines = append(s.lines, sysLine{text: "# " + key + ": " + doc})
	}
	start := len(key) + 1
	s.lines = append(s.lines, sysLine{text: key + "=" + q, key: key, value: value, valStart: start, valEnd: start + len(q)})
	if s.noFinalNewline {
		s.noFinalNewline = false
	}
	return nil
}

func isShellName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) {
			return false
		}
	}
	return true
}

// shellQuote writes value so that sh reads it back unchanged: bare when it
// is made of characters the shell never interprets, else in single quotes.
func shellQuote(value string) string {
	safe := true
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !(isIdentByte(c) || strings.IndexByte("./:@%+,=-", c) >= 0) {
			safe = false
			break
		}
	}
	if safe {
		return value
	}
	return "'" + strings.ReplaceAll(value, "'", `'\''`) + "'"
}

// parseShellLine reads one line of a sysconfig file.
func parseShellLine(ln string) (sysLine, error) {
	l := sysLine{text: ln}
	if j := strings.IndexAny(ln, "\r\x00"); j >= 0 {
		if ln[j] == '\r' {
			return l, errors.New("carriage return in line (CRLF line endings?)")
		}
		return l, errors.New("NUL byte in line")
	}
	i := skipBlanks(ln, 0)
	if i == len(ln) || ln[i] == '#' {
		return l, nil
	}
	if strings.HasPrefix(ln[i:], "export") && i+6 < len(ln) && (ln[i+6] == ' ' || ln[i+6] == '\t') {
		i = skipBlanks(ln, i+6)
	}
	nameStart := i
	for i < len(ln) && isIdentByte(ln[i]) {
		i++
	}
	name := ln[nameStart:i]
	if !isShellName(name) || i == len(ln) || ln[i] != '=' {
		if isShellName(name) && i < len(ln) && (ln[i] == ' ' || ln[i] == '\t') && strings.HasPrefix(strings.TrimLeft(ln[i:], " \t"), "=") {
			return l, fmt.Errorf("space before '=' after %s: the shell would run it as a command", name)
		}
		return l, fmt.Errorf("not a KEY=VALUE assignment: %q", strings.TrimSpace(ln))
	}
	i++ // '='
	l.valStart = i
	value, end, err := shellWord(ln, i)
	if err != nil {
		return l, fmt.Errorf("%s: %w", name, err)
	}
	l.valEnd = end
	rest := skipBlanks(ln, end)
	if rest < len(ln) && ln[rest] != '#' {
		if rest == end {
			return l, fmt.Errorf("%s: unexpected %q after the value", name, ln[rest])
		}
		return l, fmt.Errorf("%s: more than one word after '=' (quote a value with spaces; one assignment per line)", name)
	}
	l.key, l.value = name, value
	return l, nil
}

func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// shellWord decodes the shell word that starts at ln[i] and returns it and
// the index just after it.
func shellWord(ln string, i int) (string, int, error) {
	var b strings.Builder
	start := i
	for i < len(ln) {
		c := ln[i]
		switch {
		case c == ' ' || c == '\t':
			return b.String(), i, nil
		case c == '\'':
			j := strings.IndexByte(ln[i+1:], '\'')
			if j < 0 {
				return "", 0, errors.New("unterminated single quote (values must fit on one line)")
			}
			b.WriteString(ln[i+1 : i+1+j])
			i += j + 2
		case c == '"':
			i++
			closed := false
			for i < len(ln) && !closed {
				switch d := ln[i]; d {
				case '"':
					closed = true
					i++
				case '\\':
					if i+1 < len(ln) && strings.IndexByte("$`\"\\", ln[i+1]) >= 0 {
						b.WriteByte(ln[i+1])
						i += 2
					} else if i+1 == len(ln) {
						return "", 0, errors.New("backslash at the end of the line (continuation lines are not supported)")
					} else {
						b.WriteByte('\\')
						i++
					}
				case '$', '`':
					return "", 0, fmt.Errorf("%q expansion inside double quotes is not supported; write the value itself", d)
				default:
					b.WriteByte(d)
					i++
				}
			}
			if !closed {
				return "", 0, errors.New("unterminated double quote (values must fit on one line)")
			}
		case c == '\\':
			if i+1 == len(ln) {
				return "", 0, errors.New("backslash at the end of the line (continuation lines are not supported)")
			}
			b.WriteByte(ln[i+1])
			i += 2
		case c == '$' || c == '`':
			return "", 0, fmt.Errorf("%q expansion is not supported; write the value itself", c)
		case c == '~' && (i == start || ln[i-1] == ':'):
			// The shell expands a tilde at the start of an assignment's
			// value and after each unquoted ':'.
			return "", 0, errors.New("'~' expansion is not supported; write the path itself")
		case strings.IndexByte(";&|<>()", c) >= 0:
			return "", 0, fmt.Errorf("shell operator %q is not supported; a sysconfig line is one assignment", c)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), i, nil
}
