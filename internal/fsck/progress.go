package fsck

import (
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is a pass's progress bar (-v or a terminal), fed in batches so
// that counting blocks costs nothing measurable.
type progress struct {
	bar     *progressbar.ProgressBar
	pending int64
	c       *checker
}

func (c *checker) newProgress(total int64, what string) *progress {
	p := &progress{c: c}
	if c.o.Progress == nil || total <= 0 {
		return p
	}
	c.out.Flush()
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(c.o.Progress),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return p
}

func (p *progress) add(n int64) {
	if p.bar == nil {
		return
	}
	p.pending += n
	if p.pending >= 1024 {
		p.bar.Add64(p.pending)
		p.pending = 0
	}
}

func (p *progress) done() {
	if p.bar == nil {
		return
	}
	p.bar.Add64(p.pending)
	p.pending = 0
	p.bar.Finish()
	p.bar = nil
}
