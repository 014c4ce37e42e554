// Package ratelog logs an event that a client can make recur as fast as it sends messages
// (a refused publish, a slow consumer, a header block that does not decode) at most once a
// minute, with how many there were: one line each would fill the log.
package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// Minute counts one kind of event and logs it, as Msg at Warn, at most once a minute. The
// zero value with Msg set is ready; it is safe for concurrent use.
type Minute struct {
	Msg    string
	mu     sync.Mutex
	n      uint64
	logged uint64
	last   time.Time
}

// Note counts one event and logs Msg with attrs, how many came since the last line
// (since_last_log) and in all (total), unless it logged less than a minute ago.
func (m *Minute) Note(log *slog.Logger, attrs ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	if time.Since(m.last) < time.Minute {
		return
	}
	log.Warn(m.Msg, append(attrs, "since_last_log", m.n-m.logged, "total", m.n)...)
	m.last, m.logged = time.Now(), m.n
}
