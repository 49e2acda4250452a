package dlm

import (
	"fmt"
	"slices"

	"o2go/internal/base"
)

// registrar is the role of the lowest live node (O2CB favours low node
// numbers in every tie-break): it orders the membership changes of every
// domain — joins, leaves, deaths — and runs their reconfigurations, one at a
// time per domain. It holds no lock state: mastery stays spread over the
// members. When it dies the next lowest node takes the role over: it asks
// every live node what it knows of each domain (sync) and restarts every
// reconfiguration that was under way, with an epoch above any seen.
type registrar struct {
	n *Node

	syncing  bool
	syncMSeq uint64
	waiting  base.NodeMap
	replies  []syncFrom
	queued   []inbound // requests received during the sync

	doms map[uint32]*regDomain
}

type syncFrom struct {
	from base.NodeID
	mseq uint64
	r    *syncReply
}

// regDomain is the registrar's record of one domain.
type regDomain struct {
	name     string
	key      uint32
	gate     bool
	epoch    uint64       // last completed epoch
	members  base.NodeMap // members at that epoch
	maxEpoch uint64       // highest epoch issued or seen
	pending  []DeadNode
	released []DeadNode
	reco     *regReco
	joins    base.NodeMap // waiting for the next reconfiguration
	leaves   base.NodeMap
}

type regReco struct {
	epoch  uint64
	target base.NodeMap
	parts  base.NodeMap
	dead   []DeadNode
	done   base.NodeMap
}

func newRegistrar(n *Node) *registrar {
	return &registrar{n: n, doms: make(map[uint32]*regDomain)}
}

func (g *registrar) sortedDomains() []*regDomain {
	ds := make([]*regDomain, 0, len(g.doms))
	for _, d := range g.doms {
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b *regDomain) int { return cmpU32(a.key, b.key) })
	return ds
}

func (g *registrar) startSync() {
	n := g.n
	g.syncing = true
	g.syncMSeq = n.mseq
	g.waiting = n.live
	g.waiting.Remove(n.self)
	g.replies = nil
	for _, x := range g.waiting.Nodes() {
		n.send(x, 0, &syncQuery{})
	}
	if g.waiting.Empty() {
		g.finishSync()
	}
}

func (g *registrar) handle(in inbound) error {
	from, m := in.from, in.m
	if r, ok := m.(*syncReply); ok {
		if !g.syncing || r.QueryMSeq != g.syncMSeq || !g.waiting.Has(from) {
			return nil
		}
		g.replies = append(g.replies, syncFrom{from, in.mseq, r})
		g.waiting.Remove(from)
		if g.waiting.Empty() {
			g.finishSync()
		}
		return nil
	}
	if g.syncing {
		g.queued = append(g.queued, in)
		return nil
	}
	switch m := m.(type) {
	case *joinReq:
		return g.join(from, Key(m.Name), m)
	case *leaveReq:
		g.leave(from, m.Key)
	case *doneMsg:
		g.done(from, m.Key, m)
	case *releaseReq:
		g.release(from, m.Key, m)
	}
	return nil
}

func (g *registrar) join(from base.NodeID, key uint32, m *joinReq) error {
	n := g.n
	rd := g.doms[key]
	if rd != nil && rd.name != m.Name {
		n.send(from, key, &joinRefused{Reason: fmt.Sprintf("domain %q has the same key (%#x) as domain %q", m.Name, key, rd.name)})
		return nil
	}
	if rd == nil {
		rd = &regDomain{name: m.Name, key: key, gate: m.Gate}
		g.doms[key] = rd
	}
	if rd.reco != nil && rd.reco.target.Has(from) {
		return nil
	}
	if rd.reco == nil && rd.members.Has(from) {
		return nil
	}
	rd.joins.Add(from)
	rd.leaves.Remove(from)
	g.startNext(rd)
	return nil
}

func (g *registrar) leave(from base.NodeID, key uint32) {
	rd := g.doms[key]
	if rd == nil {
		return
	}
	inTarget := rd.reco != nil && rd.reco.target.Has(from)
	if !rd.members.Has(from) && !inTarget && !rd.joins.Has(from) {
		return
	}
	rd.joins.Remove(from)
	if rd.members.Has(from) || inTarget {
		rd.leaves.Add(from)
	}
	g.startNext(rd)
}

func (g *registrar) done(from base.NodeID, key uint32, m *doneMsg) {
	rd := g.doms[key]
	if rd == nil || rd.reco == nil || m.Epoch != rd.reco.epoch {
		return
	}
	rd.reco.done.Add(from)
	if rd.reco.parts.Minus(rd.reco.done).Empty() {
		g.complete(rd)
	}
}

func (g *registrar) release(from base.NodeID, key uint32, m *releaseReq) {
	n := g.n
	rd := g.doms[key]
	to := base.NodeMapOf(from)
	if rd != nil {
		if !containsDead(rd.released, m.Dead) {
			rd.released = append(rd.released, m.Dead)
		}
		if i := slices.Index(rd.pending, m.Dead); i >= 0 {
			rd.pending = slices.Delete(rd.pending, i, i+1)
		}
		to = to.Union(rd.members)
		if rd.reco != nil {
			to = to.Union(rd.reco.parts)
		}
	}
	to = to.Intersect(n.live)
	for _, x := range to.Nodes() {
		n.send(x, key, &releasedMsg{Dead: m.Dead})
	}
	if rd != nil {
		g.startNext(rd) // leaves may have waited for this
	}
}

// nodeDown restarts or starts the reconfiguration of every domain the dead
// node took part in.
func (g *registrar) nodeDown(dn DeadNode) {
	if g.syncing {
		g.waiting.Remove(dn.Node)
		if g.waiting.Empty() {
			g.finishSync()
		}
		return
	}
	for _, rd := range g.sortedDomains() {
		rd.joins.Remove(dn.Node)
		rd.leaves.Remove(dn.Node)
		switch {
		case rd.reco != nil && (rd.reco.parts.Has(dn.Node) || rd.reco.target.Has(dn.Node)):
			r := rd.reco
			target, parts := r.target, r.parts
			target.Remove(dn.Node)
			parts.Remove(dn.Node)
			dead := append(slices.Clone(r.dead), dn)
			g.start(rd, target, parts, dead)
		case rd.reco == nil && rd.members.Has(dn.Node):
			target := rd.members
			target.Remove(dn.Node)
			g.start(rd, target, target, []DeadNode{dn})
		}
	}
}

// start issues a new epoch of rd with the given target and participants.
func (g *registrar) start(rd *regDomain, target, parts base.NodeMap, dead []DeadNode) {
	n := g.n
	target = target.Intersect(n.live)
	parts = parts.Intersect(n.live)
	rd.maxEpoch++
	rd.reco = &regReco{epoch: rd.maxEpoch, target: target, parts: parts, dead: dead}
	if parts.Empty() {
		g.complete(rd)
		return
	}
	f := &freezeMsg{
		Epoch: rd.maxEpoch, Name: rd.name, Gate: rd.gate,
		Prev: rd.members, Target: target, Participants: parts,
		Dead: slices.Clone(dead), Pending: slices.Clone(rd.pending),
	}
	for _, p := range parts.Nodes() {
		n.send(p, rd.key, f)
	}
}

func (g *registrar) complete(rd *regDomain) {
	n := g.n
	r := rd.reco
	rd.reco = nil
	rd.epoch = r.epoch
	rd.members = r.target
	if rd.gate {
		for _, x := range r.dead {
			if !containsDead(rd.pending, x) && !containsDead(rd.released, x) {
				rd.pending = append(rd.pending, x)
			}
		}
		sortDead(rd.pending)
	}
	for _, p := range r.parts.Intersect(n.live).Nodes() {
		n.send(p, rd.key, &completeMsg{Epoch: r.epoch, Members: r.target})
	}
	if rd.members.Empty() && rd.joins.Empty() {
		delete(g.doms, rd.key)
		return
	}
	g.startNext(rd)
}

// startNext starts a reconfiguration for the joins and leaves waiting, all at
// once. In a gated domain, leaves wait while a dead node is not recovered:
// the members hold the only record that its locks must stay (a file system
// finishes its recoveries before it unmounts, as OCFS2 does).
func (g *registrar) startNext(rd *regDomain) {
	if rd.reco == nil {
		// A join or leave asked again while it was under way is done.
		rd.joins = rd.joins.Minus(rd.members)
		rd.leaves = rd.leaves.Intersect(rd.members)
	}
	leaves, joins := rd.leaves, rd.joins
	if rd.gate && len(rd.pending) > 0 {
		leaves = base.NodeMap{}
		// A node back before its death is recovered joins after the
		// recovery: its file system would take its old slot, whose
		// journal and locks the survivors' recovery still needs.
		var dead base.NodeMap
		for _, x := range rd.pending {
			dead.Add(x.Node)
		}
		joins = joins.Minus(dead)
	}
	if rd.reco != nil || (joins.Empty() && leaves.Empty()) {
		return
	}
	target := rd.members.Union(joins).Minus(leaves)
	parts := rd.members.Union(target).Union(leaves)
	rd.joins = rd.joins.Minus(joins)
	rd.leaves = rd.leaves.Minus(leaves)
	g.start(rd, target, parts, nil)
}

// finishSync rebuilds the registrar's record of every domain from what the
// live nodes reported, and restarts each domain that is not quiet: under
// reconfiguration somewhere, members disagreeing, or a member dead.
func (g *registrar) finishSync() {
	n := g.n
	g.syncing = false
	var all []syncFrom
	for _, sf := range g.replies {
		// A reply from a node that died since is from a dead incarnation.
		if n.live.Has(sf.from) && n.downSeq[sf.from] <= sf.mseq {
			all = append(all, sf)
		}
	}
	all = append(all, syncFrom{n.self, n.mseq, n.syncReply(n.mseq)})
	g.replies = nil
	byKey := map[uint32][]domainFrom{}
	var keys []uint32
	for _, sf := range all {
		for i := range sf.r.Domains {
			dr := &sf.r.Domains[i]
			if _, ok := byKey[dr.Key]; !ok {
				keys = append(keys, dr.Key)
			}
			byKey[dr.Key] = append(byKey[dr.Key], domainFrom{sf.from, dr})
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		g.adopt(key, byKey[key])
	}
	q := g.queued
	g.queued = nil
	for _, in := range q {
		_ = g.handle(in)
	}
}

type domainFrom struct {
	from base.NodeID
	r    *domainReport
}

// adopt rebuilds the record of one domain from the sync reports. A node
// counts as a member only on its own word (it reports the domain joined,
// leaving, or under reconfiguration); a node others count as a member that
// does not say so itself is dead (or a new incarnation of a dead node), and
// its death is part of the restarted reconfiguration.
func (g *registrar) adopt(key uint32, reps []domainFrom) {
	n := g.n
	var latest *domainReport
	var latestEpoch, maxEpoch uint64
	var known, claim, left base.NodeMap
	var pending, released, dead []DeadNode
	flux := false
	var stableEpoch uint64
	var stableMembers base.NodeMap
	first := true
	for _, df := range reps {
		r := df.r
		e := max(r.StableEpoch, r.RecoEpoch)
		maxEpoch = max(maxEpoch, e)
		if latest == nil || e > latestEpoch {
			latest, latestEpoch = r, e
		}
		known = known.Union(r.Members).Union(r.Target).Union(r.Parts)
		for _, x := range r.Pending {
			if !containsDead(pending, x) {
				pending = append(pending, x)
			}
		}
		for _, x := range r.Released {
			if !containsDead(released, x) {
				released = append(released, x)
			}
		}
		for _, x := range r.Dead {
			if !containsDead(dead, x) {
				dead = append(dead, x)
			}
		}
		switch {
		case r.InReco:
			flux = true
			claim.Add(df.from)
		case r.Phase == phaseJoined || r.Phase == phaseLeaving:
			claim.Add(df.from)
			if first {
				stableEpoch, stableMembers, first = r.StableEpoch, r.Members, false
			} else if r.StableEpoch != stableEpoch || r.Members != stableMembers {
				flux = true
			}
		case r.Phase == phaseLeft:
			left.Add(df.from)
		}
	}
	if latest == nil {
		return
	}
	alive := claim.Intersect(n.live)
	for _, x := range known.Union(claim).Minus(alive).Minus(left).Nodes() {
		if _, ok := lastDeath(dead, x); ok {
			continue
		}
		s := n.downSeq[x]
		if s == 0 {
			s = n.startSeq
		}
		dead = append(dead, DeadNode{Node: x, Seq: s})
		flux = true
	}
	pending = slices.DeleteFunc(pending, func(x DeadNode) bool { return containsDead(released, x) })
	sortDead(pending)
	sortDead(dead)
	target := latest.Members
	if latest.InReco && latest.RecoEpoch >= latest.StableEpoch {
		target = latest.Target
	}
	target = target.Intersect(alive)
	if alive.Empty() {
		return
	}
	if target != alive {
		flux = true
	}
	rd := &regDomain{
		name: latest.Name, key: key, gate: latest.Gate,
		epoch: stableEpoch, members: stableMembers, maxEpoch: maxEpoch,
		pending: pending, released: released,
	}
	g.doms[key] = rd
	if !flux {
		rd.epoch, rd.members = maxEpoch, target
		return
	}
	g.start(rd, target, alive, dead)
}
