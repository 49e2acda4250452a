package node

import (
	"net"
	"os"
	"strconv"
	"time"
)

// notify sends a message to systemd's notification socket (sd_notify(3)):
// READY=1 once the agent listens, WATCHDOG=1 from the watchdog while the
// event loop runs. Nothing happens outside systemd (no NOTIFY_SOCKET).
func notify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}

// sdWatchdogInterval is how often to ping systemd's watchdog: half of
// WATCHDOG_USEC (0 when the watchdog is off or meant for another process).
func sdWatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
