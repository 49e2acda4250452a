package volume

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// MountEntry is one line of a mount table (/proc/mounts format).
type MountEntry struct {
	Source, Mountpoint, FSType string
}

// ReadMountTable reads a mount table in /proc/mounts' format
// ("/proc/self/mounts": the mounts this process sees), undoing its octal
// escapes (\040 for a space).
func ReadMountTable(path string) ([]MountEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []MountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		out = append(out, MountEntry{Source: unescapeMount(fields[0]), Mountpoint: unescapeMount(fields[1]), FSType: fields[2]})
	}
	return out, sc.Err()
}

// unescapeMount undoes the mount table's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
