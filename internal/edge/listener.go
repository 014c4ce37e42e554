package edge

import (
	"container/list"
	"net"
	"net/http"
	"sync"
)

// Listener holds at most a set number of accepted connections open at once, and never lets
// connections that carry no request keep a new client out.
//
// The HTTP server tells it each connection's state ([Listener.ConnState], set as
// http.Server.ConnState). When the cap is reached and another client connects, the listener
// closes the connection that has been idle longest (a keep-alive connection between
// requests, or an HTTP/2 connection without a stream) to admit it; with none idle, the one
// that has waited longest for its first request (accepted, its request not yet read); with
// neither, Accept waits while the cap is reached, so further clients wait in the kernel's
// backlog (and time out there) instead of each costing nird a goroutine and buffers. A
// connection serving a request is never closed for another. At most the cap are open, and
// one more accepted connection is held unserved when every idle or new one became active
// between Accept's check and the kernel's answer (then it waits for a slot).
//
// HTTP lets a server close an idle keep-alive connection at any time (RFC 9112 section
// 9.5): a client sends its next request on a fresh connection, and retries an idempotent
// one that crossed the close. A connection that has not yet sent its request, and was
// closed for another, gets no answer: it was the slowest to send while the cap was full.
//
// It is golang.org/x/net/netutil.LimitListener's idea in the lines nird needs, without
// adding x/net for it, plus the eviction and a count of the open connections for the
// metrics.
type Listener struct {
	net.Listener
	// OnEvict, when set before the first Accept, is called each time a connection is closed
	// to admit another (nird counts them in a metric).
	OnEvict func()
	max     int // no cap when < 1

	mu      sync.Mutex
	open    int
	idle    list.List     // *limitConn in the order they went idle, longest idle first
	fresh   list.List     // *limitConn accepted and not yet active, oldest first
	changed chan struct{} // closed and replaced when a slot frees or a connection may be evicted
	evicted int64

	closeOnce sync.Once
	done      chan struct{} // closed by Close, so that a waiting Accept returns
}

// LimitListener returns ln holding at most n connections open; n < 1 is no cap. Set the
// HTTP server's ConnState to its [Listener.ConnState]: without it no connection is known to
// carry no request, and none is closed for another.
func LimitListener(ln net.Listener, n int) *Listener {
	return &Listener{Listener: ln, max: n, changed: make(chan struct{}), done: make(chan struct{})}
}

// Accept takes the next connection from the kernel when it can be admitted: a slot is
// free, or a connection may be closed to make one. It waits otherwise.
func (l *Listener) Accept() (net.Conn, error) {
	if err := l.wait(); err != nil {
		return nil, err
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &limitConn{Conn: c, l: l}
	for {
		l.mu.Lock()
		if l.max < 1 || l.open < l.max {
			l.open++
			l.mu.Unlock()
			return lc, nil
		}
		if v := l.victim(); v != nil {
			// v's slot passes to lc: open stays as it is.
			l.forget(v)
			l.evicted++
			l.mu.Unlock()
			v.Conn.Close()
			if l.OnEvict != nil {
				l.OnEvict()
			}
			return lc, nil
		}
		// Between wait and here every idle or new connection became active (or none is
		// known): lc waits for a slot, the one connection beyond the cap.
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

// wait returns when a connection may be admitted, or net.ErrClosed once l is closed.
func (l *Listener) wait() error {
	for {
		l.mu.Lock()
		if l.max < 1 || l.open < l.max || l.victim() != nil {
			l.mu.Unlock()
			return nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-l.done:
			return net.ErrClosed
		}
	}
}

// victim returns the connection to close for a new one, or nil. l.mu is held.
func (l *Listener) victim() *limitConn {
	if e := l.idle.Front(); e != nil {
		return e.Value.(*limitConn)
	}
	if e := l.fresh.Front(); e != nil {
		return e.Value.(*limitConn)
	}
	return nil
}

// forget takes c off its list and marks it closed, so that its slot is counted once. l.mu
// is held.
func (l *Listener) forget(c *limitConn) {
	if c.elem != nil {
		c.list().Remove(c.elem)
		c.elem = nil
	}
	c.gone = true
}

// notify wakes the Accept waiting for a slot or a connection to close. l.mu is held.
func (l *Listener) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// ConnState is for http.Server.ConnState: it tracks which of l's connections carry no
// request (new or idle), those that may be closed to admit another client. For HTTP/2
// (h2c), net/http reports a connection idle when it has no stream open, and active while it
// has one.
func (l *Listener) ConnState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitConn)
	if !ok || lc.l != l {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.gone || l.max < 1 {
		return
	}
	switch s {
	case http.StateNew:
		if lc.elem == nil && !lc.idling {
			lc.elem = l.fresh.PushBack(lc)
			l.notify()
		}
	case http.StateIdle:
		if lc.elem != nil {
			lc.list().Remove(lc.elem)
		}
		lc.idling = true
		lc.elem = l.idle.PushBack(lc)
		l.notify()
	case http.StateActive, http.StateHijacked:
		if lc.elem != nil {
			lc.list().Remove(lc.elem)
			lc.elem = nil
		}
	}
}

// Close closes the listener; an Accept waiting for a slot returns net.ErrClosed.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// Open returns the number of accepted connections open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Evicted returns how many connections were closed to admit another.
func (l *Listener) Evicted() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evicted
}

type limitConn struct {
	net.Conn
	l *Listener
	// Under l.mu: the connection's element in l.idle (idling) or l.fresh, nil while
	// active or before ConnState reports it new; gone once it is closed or evicted, its
	// slot given back or passed on.
	elem   *list.Element
	idling bool
	gone   bool
}

// list returns the list c.elem is in. c.l.mu is held.
func (c *limitConn) list() *list.List {
	if c.idling {
		return &c.l.idle
	}
	return &c.l.fresh
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	l := c.l
	l.mu.Lock()
	if !c.gone {
		l.forget(c)
		l.open--
		l.notify()
	}
	l.mu.Unlock()
	return err
}
