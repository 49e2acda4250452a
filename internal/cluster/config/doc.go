// Package config owns o2go's cluster configuration as it lives on disk: the
// O2CB cluster.conf (clusters, their nodes and global heartbeat regions), the
// o2cb.sysconfig(5) file (which cluster to start, O2CB's timeouts, and
// o2go's own settings), their validation, and writing them back atomically.
//
// config is rank R1. It may read and replace its own files and nothing else
// of the outside world: no network, no clocks, no devices. Name resolution
// (o2cb's add-node without --ip) is passed in as a [Resolver].
//
// # cluster.conf
//
// The format is the one ocfs2-tools' jconfig reads and o2cb(8) writes
// (ocfs2.cluster.conf(5)). A stanza header starts in the first column and
// ends with a colon; its attributes follow, one per line, each indented by
// whitespace (o2cb uses one tab) as "key = value"; a blank line ends the
// stanza. A '#' in the first column starts a comment line. Three stanza
// kinds exist:
//
//	cluster:
//		name = webcluster
//		heartbeat_mode = global
//		node_count = 1
//
//	heartbeat:
//		cluster = webcluster
//		region = 77D95EF51C0149D2823674FCC162CF8B
//
//	node:
//		cluster = webcluster
//		number = 7
//		ip_port = 7777
//		ip_address = 192.168.0.107
//		name = node7
//
// One file may describe several clusters; nodes and heartbeat regions name
// their cluster.
//
// An existing file from an O2CB cluster must work unchanged, so o2go reads
// what o2cb 1.8.7 reads (the syntax of ocfs2-tools' jconfig, the checks of
// its o2cb_config.c), and refuses only what o2cb refuses, what the rest of
// O2CB refuses later (the kernel's node manager, o2cb register-cluster), and
// near misses of known words. TestRealO2CBListsOddFilesLikeUs and
// TestRealO2CBDifferences check each case below against the installed o2cb.
//
// What o2cb accepts silently, o2go accepts with a [Warning] (in
// [ClusterConf.Warnings]) that says what is odd and what o2go does; the
// commands and the agent print them:
//
//   - node_count that differs from the number of node stanzas: nothing
//     reads it, so o2go goes by the node stanzas. The listings show the
//     file's value, as o2cb's do; o2go's next rewrite writes the true count
//     (o2cb keeps the stale one, adding or subtracting as it edits).
//   - unknown attributes and unknown stanzas: ignored; every rewrite, o2go's
//     or o2cb's, drops them.
//   - node and heartbeat stanzas that name no cluster, or a cluster the
//     file does not have: ignored (o2cb reads a cluster's stanzas by their
//     'cluster' value), and dropped by the next rewrite.
//   - an attribute set twice in a stanza: the last value counts.
//   - a carriage return at the end of a value: dropped, as jconfig drops
//     trailing white space. (Anywhere but in values and comments o2cb
//     refuses it, so a file with CRLF line endings throughout is refused.)
//
// Silently accepted, as by o2cb: numbers as strtoul reads them ("+3",
// "07777", "-0"); a value continued on the next line by a trailing
// backslash (harmless in an unknown attribute; no known attribute has a
// valid value with a line break, so there it is an error); a comment line
// inside a stanza, which does not end it; a stanza header right after an
// attribute, without a blank line between.
//
// A near miss is an unknown attribute or stanza kind that is a known one
// but for case, an edit or two, or a shortening (heartbeat_mod, ip_adress,
// mode, Name, nodes:): o2cb would ignore it, so that "heartbeat_mod =
// global" would quietly mean local heartbeat. o2go refuses such a file,
// naming the word it probably means. A node or heartbeat stanza naming a
// cluster the file does not have is ignored with a warning, which asks
// whether a close cluster name was meant ("webclustr" beside
// "webcluster"); names like db1 and a leftover db3 are close too, so that
// one is not refused.
//
// The facts o2go enforces beyond o2cb's parser, and where they come from:
//
//   - cluster name: 1 to 16 characters [0-9A-Za-z] (o2cb add-cluster;
//     OCFS2_CLUSTER_NAME_LEN), unique in the file.
//   - node_count: required (o2cb refuses a cluster without it), a number
//     0..2^32-1; see above for its value.
//   - heartbeat_mode: local or global, any case (o2cb lowercases it);
//     local when absent, as o2cb does.
//   - node: name (1 to 64 characters, O2NM_MAX_NAME_LEN; the host name
//     without its domain, so letters, digits, '.', '-', '_'), number 0..254
//     (O2NM_MAX_NODES), ip_address a dotted-quad IPv4 address, ip_port
//     1..65534 (the kernel's configfs refuses 0 and 65535). Name, number and
//     ip_address:ip_port are unique within a cluster. (The kernel's O2CB also
//     refuses two nodes with the same address on different ports; o2go, which
//     may run several nodes on one host, allows that.)
//   - heartbeat: region is a volume UUID, 32 hex digits (o2cb writes them in
//     upper case), unique within the cluster, at most 32 regions per cluster
//     (O2NM_MAX_REGIONS).
//   - what o2cb's parser rejects, o2go rejects too: an attribute after a
//     blank line (or a line of blanks), an indented comment, a space before
//     a stanza's colon, a carriage return outside values and comments, a
//     missing node_count.
//
// Errors carry the file name and line number ("cluster.conf:12: node stanza
// lacks 'number'"). A syntax error stops the reading there; past the syntax,
// every problem of the file is reported, not just the first.
//
// [ClusterConf.Format] writes what o2cb writes, byte for byte: all cluster stanzas, then
// all heartbeat stanzas, then all node stanzas (o2cb groups stanzas by kind
// in its hash table's order), each kind in file order, attributes in o2cb's
// order, a blank line after each stanza, and an empty file when no cluster is
// left. Comments are not kept — o2cb drops them too. Parse(Format(c)) is c,
// without warnings, and Format(Parse(b)) is b for every file o2cb wrote from
// a file without a stale node_count (the tests check both against the
// installed o2cb).
//
// # Where o2go keeps its own settings
//
// o2go needs settings O2CB does not have (cluster secret, fence method,
// heartbeat interval, kill blocks). Experiments with the real o2cb 1.8.7
// (TestRealO2CBDropsForeignStanzas) show that its parser accepts an extra
// stanza ("o2go:") and unknown keys, but that every o2cb command that
// changes the file rewrites it from its own model and silently drops them:
// an operator's `o2cb add-node` would erase o2go's settings. So cluster.conf
// holds only what O2CB knows; o2go reads other stanzas and keys with a
// warning, and drops them as o2cb does.
//
// o2go's settings live in the o2cb sysconfig file as O2GO_* variables beside
// O2CB's own. That file is a shell fragment the o2cb init script sources, so
// extra variables are harmless to it (TestRealInitScriptSourcesOurSysconfig).
// Its writers (`/etc/init.d/o2cb configure`, `dpkg-reconfigure ocfs2-tools`)
// regenerate it from a template and drop O2GO_* lines too; o2go then falls
// back to its defaults. That cannot go unnoticed where it matters: nodes
// compare their timing values with their peers' ([Timeouts.CheckPeer]), so a
// node whose O2GO timing reverted is refused rather than run with different
// timing; the fence method reverts to O2CB's own default (reset). Still the
// safest practice is to keep O2GO_* at their defaults or reapply them after
// such a rewrite. The cluster secret itself is never in that world-readable
// file, only the path to it ([LoadSecret]).
//
// # The sysconfig file
//
// /etc/sysconfig/o2cb (Red Hat, SUSE) or /etc/default/o2cb (Debian), chosen
// like the init script does ([SysconfigPath]). [Sysconfig] keeps the file's
// lines, comments and unknown variables, so that Format after Parse is the
// same bytes and Set changes only the line it must. It understands the
// subset of shell that such files use: KEY=VALUE with optional "export",
// single and double quotes, backslash escapes, comments; it refuses what it
// cannot evaluate ($ expansions, command substitution, commands).
// [Settings] are the typed values; [Timeouts] documents every timing value
// with its unit, formula and the reason for its default.
//
// # Saving
//
// [ClusterConf.Save] and [Sysconfig.Save] replace a file atomically: a
// temporary file in the same directory, written, fsynced, given the old
// file's mode and owner, renamed over the old one, and the directory fsynced.
// On any error the old file is untouched and the temporary file is removed.
// A symbolic link is followed, so the file it points to is replaced.
package config
