package web

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/projections"
)

// errJobRunning refuses a second job while one runs: a rebuild and a replay each read the
// whole stream, and the machine is better off doing one at a time.
var errJobRunning = errors.New("a job is already running")

var errShuttingDown = errors.New("the console is shutting down")

// job is a rebuild or a snapshot an operator started. Its progress is read by the page
// that polls it.
type job struct {
	Title   string
	By      string
	Started time.Time

	mu       sync.Mutex // guards the fields below
	progress *projections.Progress
	finished time.Time
	result   string
	err      error
}

func (jb *job) lock()   { jb.mu.Lock() }
func (jb *job) unlock() { jb.mu.Unlock() }

// jobState is a consistent copy of a job's state.
type jobState struct {
	Title    string
	By       string
	Started  time.Time
	Running  bool
	Progress *projections.Progress
	Finished time.Time
	Result   string
	Err      error
}

func (jb *job) state() jobState {
	jb.lock()
	defer jb.unlock()
	return jobState{Title: jb.Title, By: jb.By, Started: jb.Started, Running: jb.finished.IsZero(),
		Progress: jb.progress, Finished: jb.finished, Result: jb.result, Err: jb.err}
}

// start runs fn as the console's job, with the principal p in its context (the API's
// handlers check it), unless one is running.
func (j *jobs) start(p auth.Principal, title string, fn func(ctx context.Context, progress func(projections.Progress)) (string, error)) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped {
		return errShuttingDown
	}
	if j.current != nil && j.current.state().Running {
		return errJobRunning
	}
	jb := &job{Title: title, By: p.String(), Started: time.Now()}
	j.current = jb
	ctx := auth.NewContext(j.ctx, p)
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		res, err := fn(ctx, func(pr projections.Progress) {
			jb.lock()
			jb.progress = &pr
			jb.unlock()
		})
		jb.lock()
		jb.finished, jb.result, jb.err = time.Now(), res, err
		jb.unlock()
		if err != nil {
			j.log.Warn("console job failed", "job", title, "principal", p.String(), "err", err)
		} else {
			j.log.Info("console job finished", "job", title, "principal", p.String(), "result", res)
		}
	}()
	return nil
}

// latest returns the current or last job, if any.
func (j *jobs) latest() (jobState, bool) {
	j.mu.Lock()
	jb := j.current
	j.mu.Unlock()
	if jb == nil {
		return jobState{}, false
	}
	return jb.state(), true
}
