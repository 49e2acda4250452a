package fusefs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"o2go/internal/fs/volume"
)

// MountOptions are mount.ocfs2(8)'s options that apply to o2go, parsed.
type MountOptions struct {
	ReadOnly   bool
	NoCluster  bool
	Errors     string // remount-ro (default), panic, continue
	Coherency  string // full (default), buffered
	UserXattr  bool   // user_xattr (default) / nouser_xattr
	ACL        bool   // acl / noacl (default: acl when the volume has xattrs)
	Volume     volume.MountOptions
	PreferSlot int // preferred_slot= (-1: any; see preferredSlot)
	Debug      bool
}

// optionHelp lists the accepted options for error messages.
var optionHelp = []string{"ro", "rw", "data=ordered|writeback", "commit=SECONDS", "errors=remount-ro|panic|continue",
	"atime_quantum=SECONDS", "noatime", "relatime", "strictatime", "localalloc=MB", "resv_level=0..8", "dir_resv_level=0..8",
	"coherency=full|buffered", "user_xattr", "nouser_xattr", "acl", "noacl", "nocluster", "preferred_slot=N",
	"_netdev", "defaults", "heartbeat=local|global|none", "debug"}

// ParseMountOptions parses a -o list ("rw,commit=10,noatime").
func ParseMountOptions(s string) (MountOptions, error) {
	o := MountOptions{Errors: "remount-ro", Coherency: "full", UserXattr: true, ACL: true, Volume: volume.DefaultMountOptions(), PreferSlot: -1}
	bad := func(opt, why string) (MountOptions, error) {
		return o, fmt.Errorf("mount option %q: %s (options: %s)", opt, why, strings.Join(optionHelp, ", "))
	}
	for _, opt := range strings.Split(s, ",") {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		key, val, hasVal := strings.Cut(opt, "=")
		num := func(lo, hi int) (int, bool) {
			n, err := strconv.Atoi(val)
			return n, err == nil && hasVal && n >= lo && n <= hi
		}
		switch key {
		case "ro":
			o.ReadOnly = true
		case "rw":
			o.ReadOnly = false
		case "data":
			switch val {
			case "ordered":
				o.Volume.DataWriteback = false
			case "writeback":
				o.Volume.DataWriteback = true
			default:
				return bad(opt, "data= takes ordered or writeback")
			}
		case "commit":
			n, ok := num(0, 300)
			if !ok {
				return bad(opt, "commit= takes seconds, 0..300")
			}
			if n == 0 {
				n = 5 // mount.ocfs2: 0 means the default
			}
			o.Volume.CommitInterval = time.Duration(n) * time.Second
		case "errors":
			if val != "remount-ro" && val != "panic" && val != "continue" {
				return bad(opt, "errors= takes remount-ro, panic or continue")
			}
			o.Errors = val
		case "atime_quantum":
			n, ok := num(0, 1<<30)
			if !ok {
				return bad(opt, "atime_quantum= takes seconds")
			}
			o.Volume.AtimeQuantum = time.Duration(n) * time.Second
		case "noatime":
			o.Volume.NoAtime = true
		case "relatime", "strictatime", "atime":
			o.Volume.NoAtime = false
		case "localalloc":
			n, ok := num(0, 1<<20)
			if !ok {
				return bad(opt, "localalloc= takes megabytes")
			}
			o.Volume.LocalAllocMB = n
		case "resv_level", "dir_resv_level":
			n, ok := num(0, 8)
			if !ok {
				return bad(opt, key+"= takes 0..8")
			}
			if key == "resv_level" {
				o.Volume.ResvLevel = n
			} else {
				o.Volume.DirResvLevel = n
			}
		case "coherency":
			if val != "full" && val != "buffered" {
				return bad(opt, "coherency= takes full or buffered")
			}
			o.Coherency = val
		case "user_xattr":
			o.UserXattr = true
		case "nouser_xattr":
			o.UserXattr = false
		case "acl":
			o.ACL = true
		case "noacl":
			o.ACL = false
		case "nocluster":
			o.NoCluster = true
		case "preferred_slot":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil || !hasVal {
				return bad(opt, "preferred_slot= takes a slot number")
			}
			o.PreferSlot = preferredSlot(uint32(n))
		case "debug":
			o.Debug = true
		case "heartbeat":
			// mount.ocfs2 passes the volume's heartbeat mode on; the
			// agent checks the mode against the running cluster.
			switch val {
			case "local", "global", "none":
			default:
				return bad(opt, "heartbeat= is local, global or none")
			}
		case "_netdev", "defaults", "auto", "noauto", "nofail", "datavolume", "nointr", "intr", "suid", "dev", "exec":
			// fstab and mount.ocfs2 options with no meaning here.
		default:
			sort.Strings(optionHelp)
			return bad(opt, "unknown option")
		}
	}
	return o, nil
}

// preferredSlot is the slot preferred_slot=n asks for, as the kernel's
// ocfs2 reads it (fs/ocfs2/super.c): a 32-bit number kept as a signed
// 16-bit slot, 0 meaning none asked. The mount takes that slot if the
// volume has it and it is free, else the first free one
// (slot_map.c, __ocfs2_find_empty_slot): a slot past the slot count, or a
// negative one, is ignored, not refused.
func preferredSlot(n uint32) int {
	if n == 0 {
		return -1
	}
	return int(int16(uint16(n)))
}
