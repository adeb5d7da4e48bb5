package cli

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// WaitPace paces the wait for approval (Env.Pace; tests shorten it).
type WaitPace struct {
	Slice    time.Duration // the longest one wait request asks the server to hold
	MinPoll  time.Duration // the least time between two wait requests, whatever the server does
	Progress time.Duration // how often a plain progress line is printed (not a terminal)
	Tick     time.Duration // how often the terminal's progress line is redrawn
	Retry    time.Duration // the first pause after a failed wait request; it doubles up to Slice
}

// DefaultWaitPace is the pace of a real wait.
var DefaultWaitPace = WaitPace{Slice: 30 * time.Second, MinPoll: 2 * time.Second, Progress: 30 * time.Second, Tick: time.Second, Retry: 2 * time.Second}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// short writes a duration in whole seconds: 45s, 2m10s, 1h05m00s.
func short(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// progress shows how long check has waited: one line redrawn in place on a
// terminal, a plain line every WaitPace.Progress otherwise.
type progress struct {
	w               io.Writer
	tty             bool
	start, deadline time.Time
	url             string
	pace            WaitPace

	mu        sync.Mutex
	lastPlain time.Time
	done      chan struct{}
	stopped   sync.WaitGroup
}

func newProgress(w io.Writer, tty bool, start, deadline time.Time, url string, pace WaitPace) *progress {
	p := &progress{w: w, tty: tty, start: start, deadline: deadline, url: url, lastPlain: start, done: make(chan struct{}), pace: pace}
	if tty {
		p.stopped.Add(1)
		go p.redraw()
	}
	return p
}

func (p *progress) line(now time.Time) string {
	s := fmt.Sprintf("waiting for approval · %s elapsed · %s left", short(now.Sub(p.start)), short(p.deadline.Sub(now)))
	if p.url != "" {
		s += " · " + printable(p.url)
	}
	return s
}

func (p *progress) redraw() {
	defer p.stopped.Done()
	t := time.NewTicker(p.pace.Tick)
	defer t.Stop()
	for {
		p.mu.Lock()
		fmt.Fprint(p.w, "\r\x1b[K"+p.line(time.Now()))
		p.mu.Unlock()
		select {
		case <-t.C:
		case <-p.done:
			return
		}
	}
}

// plain prints the progress line when not on a terminal, at most once per
// WaitPace.Progress.
func (p *progress) plain(now time.Time) {
	if p.tty || now.Sub(p.lastPlain) < p.pace.Progress {
		return
	}
	p.lastPlain = now
	fmt.Fprintln(p.w, p.line(now))
}

// printf prints a message on a line of its own, above the progress line.
func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// stop ends the redrawing and clears the progress line.
func (p *progress) stop() {
	if !p.tty {
		return
	}
	close(p.done)
	p.stopped.Wait()
	fmt.Fprint(p.w, "\r\x1b[K")
}
