package edge

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listener holds at most a set number of accepted connections open at once: Accept waits
// while that many are open, so further clients wait in the kernel's backlog (and time out
// there) instead of each costing nird a goroutine and buffers. It is
// golang.org/x/net/netutil.LimitListener's idea in the few lines nird needs, without adding
// x/net for it, plus a count of the open connections for the metrics.
type Listener struct {
	net.Listener
	sem       chan struct{} // a slot per open connection; nil without a cap
	open      atomic.Int64
	closeOnce sync.Once
	done      chan struct{} // closed by Close, so that a waiting Accept returns
}

// LimitListener returns ln holding at most n connections open; n < 1 is no cap.
func LimitListener(ln net.Listener, n int) *Listener {
	l := &Listener{Listener: ln, done: make(chan struct{})}
	if n > 0 {
		l.sem = make(chan struct{}, n)
	}
	return l
}

// Accept waits for a free slot, then for a connection.
func (l *Listener) Accept() (net.Conn, error) {
	if l.sem != nil {
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	l.open.Add(1)
	return &limitConn{Conn: c, l: l}, nil
}

func (l *Listener) release() {
	if l.sem != nil {
		<-l.sem
	}
}

// Close closes the listener; an Accept waiting for a slot returns net.ErrClosed.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// Open returns the number of accepted connections open now.
func (l *Listener) Open() int { return int(l.open.Load()) }

type limitConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.release()
	})
	return err
}
