package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"o2go/internal/inspect"
)

func init() { subcommands = append(subcommands, newInfoCommand) }

func newInfoCommand() *cobra.Command {
	var (
		req      inspect.InfoRequest
		freefrag string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "info [--fs-features] [--volinfo] [--mkfs] [--freeinode] [--freefrag KB] [--space-usage PATH] [--filestat PATH] DEVICE",
		Short: "Show OCFS2 volume information (o2info's reports)",
		Long: `info prints o2info(1)'s reports about an OCFS2 volume, read from the device or
image file itself (o2info needs a block device or a mounted file system; o2go
reads image files too, and needs no mount and no cluster):

  --fs-features      the features enabled (compat, incompat, ro-compat)
  --volinfo          label, UUID, block and cluster size, node slots, features
  --mkfs             the mkfs.ocfs2 options that would make this volume
  --freeinode        allocated and free inodes per slot
  --freefrag KB      free space fragmentation, counted in chunks of KB KiB
  --space-usage PATH blocks, shared, unwritten and hole clusters of a file
  --filestat PATH    stat(1)-like details of a file, with its fragmentation

PATH names a file inside the volume ("/dir/file"). Reports print in the order
above. With --json the same facts come as one JSON object.

EXIT STATUS
  0  success
  1  the device could not be read as an OCFS2 volume, or a PATH does not exist
  2  bad command-line usage`,
		Example: `  o2go info --volinfo /dev/sdb1
  o2go info --mkfs vol.img
  o2go info --freefrag 1024 vol.img
  o2go info --filestat /lost+found vol.img`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				// o2info also takes a file on a mounted volume; o2go reads
				// the volume itself, so it needs the device.
				return &exitError{2, fmt.Errorf("info needs one DEVICE (the block device or image file of the volume), got %d arguments; PATH options name files inside it", len(args))}
			}
			if cmd.Flags().Changed("freefrag") {
				kb, err := strconv.ParseUint(freefrag, 0, 64)
				if err != nil {
					return &exitError{2, errors.New("--freefrag: bad chunk size '" + freefrag + "' (KiB, a power of 2)")}
				}
				req.FreeFrag, req.FreeFragKB = true, kb
			}
			if !req.FSFeatures && !req.VolInfo && !req.Mkfs && !req.FreeInode && !req.FreeFrag && req.SpaceUsage == "" && req.FileStat == "" {
				return &exitError{2, errors.New("say what to show: --fs-features, --volinfo, --mkfs, --freeinode, --freefrag KB, --space-usage PATH or --filestat PATH")}
			}
			v, err := inspect.OpenVolume(args[0])
			if err != nil {
				return &exitError{1, err}
			}
			defer v.Close()
			if asJSON {
				err = inspect.InfoJSON(v, cmd.OutOrStdout(), req)
			} else {
				err = inspect.Info(v, cmd.OutOrStdout(), req)
			}
			if err != nil {
				return &exitError{1, err}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(usageFlagError)
	f := cmd.Flags()
	f.BoolVar(&req.FSFeatures, "fs-features", false, "show the features enabled on the volume")
	f.BoolVar(&req.VolInfo, "volinfo", false, "show label, UUID, sizes, slots and features")
	f.BoolVar(&req.Mkfs, "mkfs", false, "show the volume as mkfs.ocfs2 options")
	f.BoolVar(&req.FreeInode, "freeinode", false, "show allocated and free inodes per slot")
	f.StringVar(&freefrag, "freefrag", "", "show free space fragmentation in chunks of `KB` KiB")
	f.StringVar(&req.SpaceUsage, "space-usage", "", "show the space used by the file at `PATH` in the volume")
	f.StringVar(&req.FileStat, "filestat", "", "show extended stat information of the file at `PATH` in the volume")
	f.BoolVar(&asJSON, "json", false, "print the reports as one JSON object")
	return cmd
}
