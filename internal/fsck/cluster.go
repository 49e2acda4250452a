package fsck

import (
	"fmt"

	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// The cluster stack stamp (fsck.ocfs2's recover_cluster_info). Before it
// changes a clustered volume, fsck.ocfs2 joins the running cluster, which
// fails when the volume is stamped for another stack or cluster; it then
// offers to stamp the running cluster on the volume (RECOVER_CLUSTER_INFO,
// default no) and stops when told no. o2go joins no cluster (it watches
// the heartbeat area instead) but keeps the rule: a volume stamped for
// another cluster is not this node's to check, until the operator says it
// is. The running cluster is the one this node's O2CB configuration names
// (Options.RunningStack); without one there is nothing to compare.

// diskClusterStack is the stamp the superblock carries (classic o2cb when
// none).
func (c *checker) diskClusterStack() volume.ClusterStack {
	if !c.sb.HasClusterInfo() {
		return volume.ClusterStack{}
	}
	ci := &c.sb.ClusterInfo
	return volume.ClusterStack{Stack: ci.StackName(), Name: ci.ClusterName(),
		GlobalHeartbeat: ci.StackName() == "o2cb" && ci.StackFlags&ondisk.ClusterO2CBGlobalHeartbeat != 0}
}

// joins reports whether a node of the running cluster can use a volume
// stamped disk: the same stamp, or a classic volume and an o2cb cluster
// with local heartbeat (what o2cb's group join accepts).
func joins(disk, run volume.ClusterStack) bool {
	return disk == run || (disk.Stack == "" && run.Stack == "o2cb" && !run.GlobalHeartbeat)
}

// recoverClusterInfo compares the volume's stamp with the running cluster
// and, when they differ, offers to stamp the running one. An error means
// the check cannot go on.
func (c *checker) recoverClusterInfo() error {
	run := c.o.RunningStack
	if run == nil {
		return nil
	}
	disk := c.diskClusterStack()
	if joins(disk, *run) {
		return nil
	}
	refuse := func() error {
		return c.fail("%s is configured for the %s cluster stack and this node runs %s: o2go fsck cannot tell whether it is in use (stamp the running cluster with o2go tunefs --update-cluster-stack, or check read-only with -n)", c.o.Device, disk, run)
	}
	// fsck.ocfs2 asks only when the stack or the cluster name differs.
	if disk.Stack != "" && disk.Stack == run.Stack && disk.Name == run.Name {
		return refuse()
	}
	desc := func(s volume.ClusterStack, with string) (string, string, string) {
		if s.Stack == "" {
			return "classic o2cb", "", ""
		}
		return s.Stack, with, s.Name
	}
	rs, rw, rn := desc(*run, "with the cluster name ")
	ds, dw, dn := desc(disk, " with the cluster name ")
	if !c.p.ask(RecoverClusterInfo, "The running cluster is using the %s stack\n%s%s, but the filesystem is configured for\nthe %s stack%s%s. Thus, o2go fsck cannot\ndetermine whether the filesystem is in use or not. This utility can\nreconfigure the filesystem to use the currently running cluster configuration.\nDANGER: YOU MUST BE ABSOLUTELY SURE THAT NO OTHER NODE IS USING THIS\nFILESYSTEM BEFORE MODIFYING ITS CLUSTER CONFIGURATION.\nRecover cluster configuration information the running cluster?",
		rs, rw, rn, ds, dw, dn) {
		return refuse()
	}
	if err := c.setClusterStack(*run); err != nil {
		c.p.found[len(c.p.found)-1].Fixed = false
		return c.fail("while recovering cluster information: %v", err)
	}
	return nil
}

// setClusterStack stamps s on the superblock the way libocfs2's
// ocfs2_set_cluster_desc does: a named stack needs the extended slot map
// (formatted here), o2cb sets CLUSTERINFO (with the global heartbeat
// flag) and clears USERSPACE_STACK, another stack sets USERSPACE_STACK
// unless CLUSTERINFO is on; the default stack clears both. The backups
// follow when the run writes the superblock at its end.
func (c *checker) setClusterStack(s volume.ClusterStack) error {
	sb := c.sb
	var ci ondisk.ClusterInfo
	incompat := sb.Features.Incompat
	formatMap := false
	if s.Stack == "" {
		incompat &^= ondisk.IncompatUserspaceStack | ondisk.IncompatClusterInfo
	} else {
		var flags uint8
		if s.Stack == "o2cb" && s.GlobalHeartbeat {
			flags = ondisk.ClusterO2CBGlobalHeartbeat
		}
		if err := ci.Set(s.Stack, s.Name, flags); err != nil {
			return err
		}
		if incompat&ondisk.IncompatExtendedSlotMap == 0 {
			incompat |= ondisk.IncompatExtendedSlotMap
			formatMap = true
		}
		switch {
		case s.Stack == "o2cb":
			incompat |= ondisk.IncompatClusterInfo
			incompat &^= ondisk.IncompatUserspaceStack
		case incompat&ondisk.IncompatClusterInfo == 0:
			incompat |= ondisk.IncompatUserspaceStack
		default:
			incompat &^= ondisk.IncompatUserspaceStack
		}
	}
	if formatMap {
		d, err := c.v.Cache.Dinode(c.sys.slotMap)
		if err != nil {
			return err
		}
		if need := uint64(c.maxSlots) * ondisk.ExtendedSlotSize; d.Size < need {
			return fmt.Errorf("the slot map (inode %d) holds %d bytes, the extended slot map of %d slots needs %d", c.sys.slotMap, d.Size, c.maxSlots, need)
		}
	}
	b, err := c.readBlock(ondisk.SuperBlockBlkno)
	if err != nil {
		return err
	}
	const sbCluster = diID2 + 0xA0
	put32(b, diID2+0x20, incompat)
	clear(b[sbCluster : sbCluster+24])
	copy(b[sbCluster:], ci.Stack[:])
	b[sbCluster+4] = ci.StackFlags
	copy(b[sbCluster+8:], ci.Cluster[:])
	if err := c.writeBlock(ondisk.SuperBlockBlkno, b, ondisk.DinodeCheckOffset); err != nil {
		return err
	}
	sb.ClusterInfo = ci
	sb.Features.Incompat = incompat
	if formatMap {
		return c.formatSlotMap()
	}
	return nil
}
