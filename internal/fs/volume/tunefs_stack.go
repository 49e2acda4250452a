package volume

import (
	"fmt"

	"o2go/internal/ondisk"
)

// tunefs --update-cluster-stack and --cluster-stack (tunefs.ocfs2's
// op_update_cluster_stack.c, o2cluster(8) and libocfs2's
// ocfs2_set_cluster_desc): the cluster stack a clustered volume is
// stamped for. A named stack forces the extended slot map (formatting the
// slot map when the volume did not have it); o2cb sets CLUSTERINFO (with
// the global heartbeat flag), pcmk and cman USERSPACE_STACK unless
// CLUSTERINFO is already on; the default stack clears both and the stamp.
//
// o2go has no cluster stack to ask: --update-cluster-stack stamps the
// cluster the command line found in this node's O2CB configuration, and
// --cluster-stack stamps the one given, without a running cluster, as
// o2cluster --update does. Both refuse dirty journals, like o2cluster.

// diskClusterStack is the stamp the volume carries.
func (t *tunefsVol) diskClusterStack() ClusterStack {
	if !t.SB.HasClusterInfo() {
		return ClusterStack{}
	}
	ci := t.SB.ClusterInfo
	return ClusterStack{Stack: ci.StackName(), Name: ci.ClusterName(),
		GlobalHeartbeat: ci.StackName() == "o2cb" && ci.StackFlags&ondisk.ClusterO2CBGlobalHeartbeat != 0}
}

// runningMatches reports whether a volume stamped disk can be used by a
// cluster running run: the same stamp, or a classic (unstamped) volume
// and an o2cb cluster with local heartbeat.
func runningMatches(disk, run ClusterStack) bool {
	if disk == run {
		return true
	}
	return disk.Stack == "" && run.Stack == "o2cb" && !run.GlobalHeartbeat
}

// updateClusterStack is --update-cluster-stack.
func (t *tunefsVol) updateClusterStack() error {
	if t.local() {
		return tunefsRefuse("%s is not clustered (local); make it a cluster volume with --fs-features=nolocal instead", t.Path)
	}
	run := t.r.o.RunningStack
	if run == nil {
		return tunefsRefuse("no running cluster to stamp: this node has no O2CB cluster configured (/etc/ocfs2/cluster.conf); name one with --cluster-stack and --cluster-name")
	}
	if err := run.Validate(); err != nil {
		return tunefsRefuse("the running cluster's description is not valid: %v", err)
	}
	if runningMatches(t.diskClusterStack(), *run) {
		t.verbosef("Device %q is already configured for the running cluster; nothing to do\n", t.Path)
		return nil
	}
	ok, err := t.r.interactCritical("Updating on-disk cluster information to match the running cluster.\n" +
		"DANGER: YOU MUST BE ABSOLUTELY SURE THAT NO OTHER NODE IS USING THIS FILESYSTEM " +
		"BEFORE MODIFYING ITS CLUSTER CONFIGURATION.\nUpdate the on-disk cluster information? ")
	if err != nil || !ok {
		return err
	}
	return t.setClusterDesc(*run)
}

// setClusterStackOp is --cluster-stack (o2cluster --update=STACK).
func (t *tunefsVol) setClusterStackOp(cs ClusterStack) error {
	if t.local() {
		return tunefsRefuse("%s is not clustered (local); make it a cluster volume with --fs-features=nolocal first", t.Path)
	}
	disk := t.diskClusterStack()
	if disk == cs {
		fmt.Fprintln(t.r.out, "New cluster stack is already on disk.")
		return nil
	}
	ok, err := t.r.interactCritical("Changing the clusterstack from %s to %s. Continue? ", disk, cs)
	if err != nil || !ok {
		return err
	}
	if err := t.setClusterDesc(cs); err != nil {
		return err
	}
	fmt.Fprintln(t.r.out, "Updated successfully.")
	return nil
}

// setClusterDesc stamps cs and writes the superblock
// (ocfs2_set_cluster_desc).
func (t *tunefsVol) setClusterDesc(cs ClusterStack) error {
	sb := t.SB
	if cs.Stack == "" {
		sb.ClusterInfo = ondisk.ClusterInfo{}
		sb.Features.Incompat &^= ondisk.IncompatUserspaceStack | ondisk.IncompatClusterInfo
		return t.writeSuper()
	}
	var flags uint8
	if cs.Stack == "o2cb" && cs.GlobalHeartbeat {
		flags = ondisk.ClusterO2CBGlobalHeartbeat
	}
	if err := sb.ClusterInfo.Set(cs.Stack, cs.Name, flags); err != nil {
		return tunefsRefuse("%v", err)
	}
	if sb.Features.Incompat&ondisk.IncompatExtendedSlotMap == 0 {
		sb.Features.Incompat |= ondisk.IncompatExtendedSlotMap
		if err := t.formatSlotMap(); err != nil {
			return err
		}
	}
	switch {
	case cs.Stack == "o2cb":
		sb.Features.Incompat |= ondisk.IncompatClusterInfo
		sb.Features.Incompat &^= ondisk.IncompatUserspaceStack
	case sb.Features.Incompat&ondisk.IncompatClusterInfo == 0:
		sb.Features.Incompat |= ondisk.IncompatUserspaceStack
	default:
		sb.Features.Incompat &^= ondisk.IncompatUserspaceStack
	}
	return t.writeSuper()
}
