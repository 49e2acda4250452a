package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"o2go/internal/cluster/config"
	"o2go/internal/inspect"
)

func init() { subcommands = append(subcommands, newMountedCommand) }

func newMountedCommand() *cobra.Command {
	var (
		quick, full bool
		asJSON      bool
		opts        inspect.MountedOptions
	)
	cmd := &cobra.Command{
		Use:   "mounted [-d | -f] [--json] [DEVICE...]",
		Short: "Find OCFS2 volumes on block devices and image files (mounted.ocfs2)",
		Long: `mounted looks for OCFS2 volumes, like mounted.ocfs2(8): on the devices and image
files given, or else on every block device of /proc/partitions (loop devices
included) larger than 1 MiB. Devices without an OCFS2 volume are skipped
silently; devices that cannot be read are reported on standard error.

  -d  (default) quick detect: Device, Stack, Cluster, F, UUID and Label.
      Stack is None for local volumes; F is G for o2cb global heartbeat.
  -f  full detect: Device, Stack, Cluster, F and the nodes heartbeating on
      the volume, by name when --config's cluster.conf names them.

A node counts as heartbeating when its heartbeat sector was written within
its dead threshold (the sector carries the time of each beat), or, with
--sample, when its sector changes within that time.

EXIT STATUS
  0  success (finding no volume is a success; devices of the scan that
     could not be opened are reported and otherwise ignored)
  1  a device named on the command line could not be read
  2  bad command-line usage`,
		Example: `  o2go mounted
  o2go mounted -f
  o2go mounted -d vol.img /dev/sdb1
  o2go mounted -f --json /dev/sdb1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if quick && full {
				return &exitError{2, fmt.Errorf("-d and -f exclude each other")}
			}
			opts.Full = full
			opts.Devices = args
			vols, unreadable := inspect.FindVolumes(opts)
			out := cmd.OutOrStdout()
			if asJSON {
				if vols == nil {
					vols = []inspect.MountedVolume{}
				}
				b, err := json.MarshalIndent(vols, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s\n", b)
			} else {
				inspect.PrintMounted(out, vols, full)
			}
			for _, err := range unreadable {
				fmt.Fprintf(cmd.ErrOrStderr(), "o2go mounted: %v\n", err)
			}
			// A scan meets devices nobody may open (the system disk in a
			// container, a drive without medium): reported, not fatal.
			if len(unreadable) > 0 && len(args) > 0 {
				return &exitError{1, nil}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(usageFlagError)
	f := cmd.Flags()
	f.BoolVarP(&quick, "quick", "d", false, "quick detect: show UUID and label (the default)")
	f.BoolVarP(&full, "full", "f", false, "full detect: show the nodes heartbeating on each volume")
	f.BoolVar(&asJSON, "json", false, "print the volumes as JSON")
	f.StringVar(&opts.ClusterConf, "config", config.DefaultClusterConfPath, "cluster.conf `FILE` to name nodes from")
	f.DurationVar(&opts.Sample, "sample", 0, "judge liveness by watching heartbeat sectors change for `DURATION` (e.g. 4s)")
	return cmd
}
