package net

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"

	"o2go/internal/testutil/transcript"
)

// TestLinksTranscript drives Links through the scripted stories of
// testdata/links.txt. Commands:
//
//	links SELF NODE...          new Links (O2CB default timeouts)
//	at DURATION                 set the clock
//	hb-up P | hb-down P         the peer's heartbeat came or went
//	accept P                    an authenticated inbound connection from P
//	established P CONN          a dial of ours passed the handshake
//	closed P CONN REASON...     a connection failed or closed
//	recv P CONN [keepreq]       a frame arrived
//	tick                        advance timers
//	status                      every link's state
func TestLinksTranscript(t *testing.T) {
	var l *Links
	var now time.Duration
	transcript.Run(t, "testdata/links.txt", func(cmd string) string {
		f := strings.Fields(cmd)
		node := func(i int) base.NodeID {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			return base.NodeID(n)
		}
		conn := func(i int) ConnID {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			return ConnID(n)
		}
		switch f[0] {
		case "links":
			var nodes base.NodeMap
			for i := 1; i < len(f); i++ {
				nodes.Add(node(i))
			}
			l = NewLinks(LinkConfigFor(node(1), nodes, config.DefaultTimeouts()))
			return ""
		case "at":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatal(err)
			}
			now = d
			return ""
		case "hb-up":
			l.HeartbeatUp(now, node(1))
		case "hb-down":
			l.HeartbeatDown(now, node(1))
		case "accept":
			c, err := l.Accept(now, node(1))
			if err != nil {
				return "refused: " + err.Error()
			}
			return fmt.Sprintf("conn %d\n", c) + formatLinkReady(l.Ready())
		case "established":
			l.Established(now, node(1), conn(2))
		case "closed":
			l.Closed(now, node(1), conn(2), strings.Join(f[3:], " "))
		case "recv":
			h := Header{Magic: MagicMsg, Type: 500}
			if len(f) > 3 && f[3] == "keepreq" {
				h = KeepaliveRequest
			}
			if !l.Received(now, node(1), conn(2), h) {
				return "dropped"
			}
		case "tick":
			l.Tick(now)
		case "status":
			var sb strings.Builder
			for p := base.NodeID(0); p < base.MaxNodes; p++ {
				if l.peers[p] == nil {
					continue
				}
				s := l.Status(p)
				fmt.Fprintf(&sb, "node %d: %s conn=%d since=%v", p, s.State, s.Conn, s.Since)
				if s.Reason != "" {
					fmt.Fprintf(&sb, " reason=%q", s.Reason)
				}
				sb.WriteString("\n")
			}
			fmt.Fprintf(&sb, "connected: [%v] lost: [%v]\n", l.Connected(), l.Lost())
			if d, ok := l.NextDeadline(); ok {
				fmt.Fprintf(&sb, "next deadline: %v\n", d)
			}
			return sb.String()
		default:
			t.Fatalf("unknown command %q", cmd)
		}
		return formatLinkReady(l.Ready())
	})
}

func formatLinkReady(r LinkReady) string {
	var sb strings.Builder
	for _, d := range r.Dials {
		fmt.Fprintf(&sb, "dial node %d conn %d\n", d.Peer, d.Conn)
	}
	for _, c := range r.Closes {
		fmt.Fprintf(&sb, "close node %d conn %d: %s\n", c.Peer, c.Conn, c.Reason)
	}
	for _, f := range r.Frames {
		what := "keepalive request"
		if f.Header.Magic == MagicKeepResp {
			what = "keepalive response"
		}
		fmt.Fprintf(&sb, "send %s to node %d conn %d\n", what, f.Peer, f.Conn)
	}
	for _, q := range r.Quorum {
		fmt.Fprintf(&sb, "quorum: %s %d\n", q.Kind, q.Node)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&sb, "log: %s\n", n)
	}
	return sb.String()
}
