package kernelvm

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// libDirs is where the dynamic loader looks when a binary has no RUNPATH
// and there is no ld.so.cache (the guest has none): Debian's multiarch
// directories first, then the classic ones.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// sharedObjects returns the ELF interpreter and every shared library that
// the dynamically linked program bin needs, transitively, as absolute
// paths where the guest's loader will look for them (the host path of the
// first directory that holds the library). A static program needs none.
// It reads the ELF headers itself rather than running ldd, which would
// execute the program's loader.
func sharedObjects(bin string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var visit func(file string, isMain bool) error
	visit = func(file string, isMain bool) error {
		f, err := elf.Open(file)
		if err != nil {
			return fmt.Errorf("reading ELF %s: %w", file, err)
		}
		defer f.Close()
		if f.Machine != elf.EM_X86_64 {
			return fmt.Errorf("%s is %v, the guest is x86-64", file, f.Machine)
		}
		if isMain {
			for _, p := range f.Progs {
				if p.Type != elf.PT_INTERP {
					continue
				}
				b := make([]byte, p.Filesz)
				if _, err := p.ReadAt(b, 0); err != nil {
					return fmt.Errorf("reading PT_INTERP of %s: %w", file, err)
				}
				interp := strings.TrimRight(string(b), "\x00")
				if !seen[interp] {
					seen[interp] = true
					seen[filepath.Base(interp)] = true // libc's DT_NEEDED on the loader is the loader
					out = append(out, interp)
				}
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("reading DT_NEEDED of %s: %w", file, err)
		}
		var runpath []string
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			vals, _ := f.DynString(tag)
			for _, v := range vals {
				for _, d := range strings.Split(v, ":") {
					d = strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(file))
					if d != "" {
						runpath = append(runpath, d)
					}
				}
			}
		}
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			p, err := findLib(lib, runpath)
			if err != nil {
				return fmt.Errorf("%s needs %s: %w", file, lib, err)
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
			if err := visit(p, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(bin, true); err != nil {
		return nil, err
	}
	return out, nil
}

func findLib(name string, runpath []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range append(runpath, libDirs...) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			if f, err := elf.Open(p); err == nil { // skip 32-bit libraries of the same name
				ok := f.Machine == elf.EM_X86_64
				f.Close()
				if ok {
					return p, nil
				}
			}
		}
	}
	return "", fmt.Errorf("not found in %s", strings.Join(append(runpath, libDirs...), ":"))
}

// isStatic reports whether the ELF file bin has no interpreter.
func isStatic(bin string) (bool, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
