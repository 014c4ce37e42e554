package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// plainEvery is how often progress is printed as a plain line when stderr is no terminal.
const plainEvery = 5 * time.Second

// progress reports a long operation on w: on a terminal a progress bar (progressbar, which
// redraws one line with carriage returns); anywhere else (a pipe, a log file) a plain line
// every plainEvery and one at the end, so a log holds readable lines and no control
// characters.
type progress struct {
	w     io.Writer
	desc  string
	bar   *progressbar.ProgressBar
	total int64

	mu   sync.Mutex // guards last and text
	last time.Time
	text string
}

func newProgress(w io.Writer, desc, unit string, total int64) *progress {
	p := &progress{w: w, desc: desc, total: total, last: time.Now()}
	if isTerminal(w) {
		p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return p
}

// set reports done of total (total may change, e.g. from events stored to persons folded),
// with text describing it for the plain lines.
func (p *progress) set(done, total int64, text string) {
	if p.bar != nil {
		if total > 0 && total != p.total {
			p.total = total
			p.bar.ChangeMax64(total)
		}
		_ = p.bar.Set64(done)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.text = text
	if time.Since(p.last) >= plainEvery {
		p.last = time.Now()
		fmt.Fprintf(p.w, "%s: %s\n", p.desc, text)
	}
}

// finish ends the bar, or prints the last plain line.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.text != "" {
		fmt.Fprintf(p.w, "%s: %s\n", p.desc, p.text)
	}
}
