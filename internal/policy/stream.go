package policy

import (
	"github.com/stepgate/stepgate/internal/plan"
)

// streamInline is how many changes Stream builds on the caller's goroutine
// before it hands the rest to a goroutine of its own: a plan of a few dozen
// changes is built faster without the hand-offs.
const streamInline = 64

// Stream returns a visit function for plan.Decode that builds each change's
// terms: the first streamInline changes as they come, the rest on a
// goroutine, so that reading a large plan and building its input overlap on
// two cores. Call done once decoding has ended: it waits for the builder
// and returns its first error. Once building has failed, visit returns that
// error too, so plan.Decode stops and returns it as is; it is the cause,
// whatever else decoding reports. The changes passed to visit must not be
// reused by the caller (plan.Decode makes a new one each time).
func (in *Input) Stream() (visit func(*plan.Change) error, done func() error) {
	var (
		inline   int
		buildErr error
		changes  chan *plan.Change // nil until the goroutine starts
		failed   = make(chan struct{})
		finished = make(chan struct{})
	)
	start := func() {
		changes = make(chan *plan.Change, 512)
		go func() {
			defer close(finished)
			for c := range changes {
				if buildErr != nil {
					continue // drain
				}
				if err := in.Add(c); err != nil {
					buildErr = err
					close(failed)
				}
			}
		}()
	}
	visit = func(c *plan.Change) error {
		if changes == nil {
			if buildErr != nil {
				return buildErr
			}
			if inline < streamInline {
				inline++
				buildErr = in.Add(c)
				return buildErr
			}
			start()
		}
		select {
		case <-failed:
			return buildErr // written before failed was closed
		default:
		}
		select {
		case changes <- c:
			return nil
		case <-failed:
			return buildErr
		}
	}
	var once bool
	done = func() error {
		if !once && changes != nil {
			once = true
			close(changes)
			<-finished
		}
		return buildErr
	}
	return visit, done
}
