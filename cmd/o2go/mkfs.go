package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"o2go/internal/fs/volume"
)

func init() { subcommands = append(subcommands, newMkfsCommand) }

func newMkfsCommand() *cobra.Command {
	var (
		blockSize, clusterSize, journal, fsType, level, mount string
		o                                                     volume.MkfsOptions
		noDiscard, discard                                    bool
	)
	cmd := &cobra.Command{
		Use:   "mkfs [options] DEVICE [BLOCKS]",
		Short: "Format a device or image file as OCFS2 (mkfs.ocfs2)",
		Long: `mkfs formats DEVICE (a block device or an image file) as an OCFS2 volume,
with mkfs.ocfs2 1.8.7's options, defaults and layout. BLOCKS limits the volume
to that many blocks of the device.

It refuses a device that is mounted on this machine, an image file with a loop
device attached, and an OCFS2 volume whose heartbeat area shows live nodes,
unless -F. Overwriting an OCFS2 volume asks "Proceed (y/N)" on a terminal;
without one it needs -F (or -x, which never asks).

EXIT STATUS
  0  the volume was made (or, with -n, would be)
  1  bad options, a geometry the format cannot hold, a device in use, a
     refusal at the prompt, or an I/O error`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if blockSize != "" {
				v, err := volume.ParseMkfsSize(blockSize)
				if err != nil {
					return fmt.Errorf("-b: %v", err)
				}
				if o.BlockSize, err = volume.RoundBlockSize(v); err != nil {
					return fmt.Errorf("-b: %v", err)
				}
			}
			if clusterSize != "" {
				v, err := volume.ParseMkfsSize(clusterSize)
				if err != nil {
					return fmt.Errorf("-C: %v", err)
				}
				if o.ClusterSize, err = volume.RoundClusterSize(v); err != nil {
					return fmt.Errorf("-C: %v", err)
				}
			}
			if journal != "" {
				if o.JournalSize, o.Journal64, err = volume.ParseJournalOptions(journal); err != nil {
					return fmt.Errorf("-J: %v", err)
				}
			}
			if fsType != "" {
				if o.Type, err = volume.ParseFSType(fsType); err != nil {
					return err
				}
			}
			if o.Level, err = volume.ParseFeatureLevel(level); err != nil {
				return err
			}
			if mount != "" {
				if o.Mount, err = volume.ParseMountType(mount); err != nil {
					return err
				}
			}
			if len(args) == 2 {
				if o.Blocks, err = parseBlockCount(args[1]); err != nil {
					return err
				}
			}
			o.NoDiscard = noDiscard && !discard
			o.Out, o.ErrOut = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if in, ok := cmd.InOrStdin().(*os.File); ok && isTerminal(in) {
				r := bufio.NewReader(in)
				o.Confirm = func(q string) bool {
					fmt.Fprint(cmd.OutOrStdout(), q)
					line, _ := r.ReadString('\n')
					return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(line)), "Y")
				}
			}
			if out, ok := cmd.OutOrStdout().(*os.File); ok && isTerminal(out) && !o.Quiet {
				var bar *progressbar.ProgressBar
				o.Progress = func(done, total int64) {
					if total < 256<<20 {
						return
					}
					if bar == nil {
						bar = progressbar.DefaultBytes(total, "Zeroing journals")
					}
					_ = bar.Set64(done)
					if done >= total {
						_ = bar.Finish()
					}
				}
			}
			_, err = volume.Mkfs(args[0], o)
			return err
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVarP(&blockSize, "block-size", "b", "", "block `size` in bytes, 512 to 4K (default: by volume size)")
	f.StringVarP(&clusterSize, "cluster-size", "C", "", "cluster `size` in bytes, 4K to 1M (default: by volume size)")
	f.IntVarP(&o.Slots, "node-slots", "N", 0, "node slots: nodes that can mount at once, 1 to 255 (default: by volume size)")
	f.StringVarP(&o.Label, "label", "L", "", "volume `label`, at most 63 bytes")
	f.StringVarP(&journal, "journal-options", "J", "", "journal `options`: size=N[KMG], [no]block64, [no]block32")
	f.StringVarP(&fsType, "fs-type", "T", "", "expected use: mail, datafiles or vmstore")
	f.StringVar(&o.Features, "fs-features", "", "features to turn on or (prefixed with no) off, comma separated")
	f.StringVar(&level, "fs-feature-level", "default", "feature set: default, max-compat or max-features")
	f.StringVarP(&mount, "mount", "M", "", "mount type: local or cluster")
	f.StringVar(&o.ClusterStack, "cluster-stack", "", "cluster stack: o2cb, pcmk or cman")
	f.StringVar(&o.ClusterName, "cluster-name", "", "cluster name (o2cb: at most 16 letters and digits)")
	f.BoolVar(&o.GlobalHeartbeat, "global-heartbeat", false, "use o2cb's global heartbeat mode")
	f.StringVarP(&o.UUID, "uuid", "U", "", "volume UUID: 32 hex digits or the dashed form (default: random)")
	f.BoolVar(&o.NoBackupSuper, "no-backup-super", false, "do not write backup superblocks")
	f.BoolVarP(&o.Force, "force", "F", false, "format even if the device looks in use")
	f.BoolVarP(&o.NoPrompt, "no-prompt", "x", false, "never ask before overwriting an OCFS2 volume")
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "print what would be done and write nothing")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing but errors")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "also report the free space and where the volume departs from mkfs.ocfs2's")
	f.BoolVar(&noDiscard, "nodiscard", false, "do not discard (BLKDISCARD) a block device's blocks first")
	f.BoolVar(&discard, "discard", false, "discard a block device's blocks first (the default)")
	return cmd
}

// parseBlockCount parses the BLOCKS argument like strtoull(s, 0):
// decimal, 0x hex or 0 octal.
func parseBlockCount(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("block count bad: %q", s)
	}
	return v, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
