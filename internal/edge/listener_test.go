package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connServer serves on a Listener with cap n, as nird does (HTTP/1.1 and h2c, the
// listener's ConnState). GET /block waits for release; every other path answers "ok".
type connServer struct {
	l       *Listener
	addr    string
	entered chan struct{}
	release chan struct{}

	onEvict atomic.Int64 // calls of the listener's OnEvict

	mu     sync.Mutex
	closed map[string]bool // remote address → the server saw it closed
}

func newConnServer(t *testing.T, n int) *connServer {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &connServer{l: LimitListener(inner, n), addr: inner.Addr().String(), entered: make(chan struct{}, 16), release: make(chan struct{}), closed: map[string]bool{}}
	s.l.OnEvict = func() { s.onEvict.Add(1) }
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols:         protocols,
		ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				s.entered <- struct{}{}
				<-s.release
			}
			_, _ = io.WriteString(w, "ok")
		}),
		ConnState: func(c net.Conn, st http.ConnState) {
			s.l.ConnState(c, st)
			if st == http.StateClosed {
				s.mu.Lock()
				s.closed[c.RemoteAddr().String()] = true
				s.mu.Unlock()
			}
		},
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(s.l); close(done) }()
	t.Cleanup(func() {
		close(s.release)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s of Shutdown: the listener's Accept did not end")
		}
	})
	return s
}

// inHandler waits until a GET /block has entered its handler.
func (s *connServer) inHandler(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("not within 10s: %s in its handler", what)
	}
}

// releaseOne lets one GET /block's handler return.
func (s *connServer) releaseOne(t *testing.T) {
	t.Helper()
	select {
	case s.release <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("not within 10s: a handler waiting for release")
	}
}

// until waits for cond on the listener's state, under its lock.
func (s *connServer) until(t *testing.T, what string, cond func(l *Listener) bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		s.l.mu.Lock()
		defer s.l.mu.Unlock()
		return cond(s.l)
	})
}

func (s *connServer) serverClosed(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed[c.LocalAddr().String()]
}

// dial opens a connection and, unless path is empty, sends one HTTP/1.1 request on it.
func (s *connServer) dial(t *testing.T, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if path != "" {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: nird\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	return c, bufio.NewReader(c)
}

// get reads one "ok" response from r, within 10s.
func get(t *testing.T, c net.Conn, r *bufio.Reader, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(b) != "ok" {
		t.Fatalf("%s: %q, %v", what, b, err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

// closedByServer checks that c reads EOF: nird closed it.
func closedByServer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("%s: read %v, want EOF (closed by nird)", what, err)
	}
}

// TestLimitListener_IdleMakesRoom: at the cap, a new client is admitted by closing the
// connection idle longest, an HTTP/1.1 keep-alive connection or an h2c connection without a
// stream alike; a connection serving a request is never closed for it, and when all are,
// the new client waits for a slot. The open connections never exceed the cap.
func TestLimitListener_IdleMakesRoom(t *testing.T) {
	s := newConnServer(t, 3)

	// 1: HTTP/1.1, idle after one request.
	c1, r1 := s.dial(t, "/x")
	get(t, c1, r1, "the first connection")
	s.until(t, "the first connection idle", func(l *Listener) bool { return l.idle.Len() == 1 })

	// 2: h2c (gRPC's transport), idle after one request: no stream open.
	var h2 net.Conn
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: protocols, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		h2 = c
		return c, err
	}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + s.addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("the h2c client spoke %s", res.Proto)
	}
	s.until(t, "the h2c connection idle", func(l *Listener) bool { return l.idle.Len() == 2 })

	// 3: a request in a handler.
	c3, r3 := s.dial(t, "/block")
	s.inHandler(t, "the third request")
	if s.l.Open() != 3 {
		t.Fatalf("Open = %d, want 3", s.l.Open())
	}

	// 4 is served: the HTTP/1.1 connection, idle longest, is closed for it.
	c4, r4 := s.dial(t, "/x")
	get(t, c4, r4, "a client at the cap")
	closedByServer(t, c1, "the longest-idle connection")
	if s.serverClosed(h2) {
		t.Error("the h2c connection was closed, though it went idle after the first")
	}
	// 4 is idle now, the h2c connection longer: 5 is served by closing that.
	s.until(t, "the fourth connection idle", func(l *Listener) bool { return l.idle.Len() == 2 })
	c5, r5 := s.dial(t, "/block")
	s.inHandler(t, "the fifth request")
	s.until(t, "a second connection closed for another", func(l *Listener) bool { return l.evicted == 2 })
	waitFor(t, "the idle h2c connection closed for the fifth", func() bool { return s.serverClosed(h2) })
	if s.serverClosed(c3) {
		t.Error("the connection serving a request was closed for another")
	}

	// 4 idle, 3 and 5 in handlers: 6 takes 4's place and blocks too. Now every connection
	// serves a request: 7 waits, unaccepted, until one is done.
	c6, r6 := s.dial(t, "/block")
	s.inHandler(t, "the sixth request")
	closedByServer(t, c4, "the idle fourth connection")
	c7, r7 := s.dial(t, "/x")
	time.Sleep(100 * time.Millisecond)
	if n := s.l.Open(); n != 3 {
		t.Fatalf("Open = %d while every connection serves a request, want 3", n)
	}
	s.mu.Lock()
	for _, c := range []net.Conn{c3, c5, c6} {
		if s.closed[c.LocalAddr().String()] {
			t.Errorf("a connection serving a request was closed for another")
		}
	}
	s.mu.Unlock()
	s.releaseOne(t)
	// One handler ends; its connection goes idle and is closed for 7.
	get(t, c7, r7, "the client that waited for a slot")
	if got := s.l.Evicted(); got != 4 {
		t.Errorf("Evicted = %d, want 4", got)
	}
	s.releaseOne(t)
	s.releaseOne(t)
	for _, x := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{c3, r3}, {c5, r5}, {c6, r6}} {
		get(t, x.c, x.r, "a blocked request")
	}
	if got := s.l.Evicted(); got != 4 {
		t.Errorf("Evicted = %d, want 4", got)
	}
	if got := s.onEvict.Load(); got != 4 {
		t.Errorf("OnEvict called %d times, want 4", got)
	}
}

// TestLimitListener_SilentMakesRoom: at the cap with no connection idle, a new client is
// admitted by closing the connection that has waited longest without sending its request
// (else a client could keep the cap with connections that send nothing, reopened every
// --read-header-timeout).
func TestLimitListener_SilentMakesRoom(t *testing.T) {
	s := newConnServer(t, 2)
	s1, _ := s.dial(t, "")
	s.until(t, "one silent connection", func(l *Listener) bool { return l.fresh.Len() == 1 })
	s2, _ := s.dial(t, "")
	s.until(t, "two silent connections", func(l *Listener) bool { return l.fresh.Len() == 2 })
	c, r := s.dial(t, "/x")
	get(t, c, r, "a client at the cap")
	closedByServer(t, s1, "the oldest silent connection")
	if s.serverClosed(s2) {
		t.Error("the younger silent connection was closed too")
	}
	if n := s.l.Open(); n > 2 {
		t.Errorf("Open = %d, want at most 2", n)
	}
}

// countingListener is a TCP listener that counts the connections taken from the kernel's
// backlog, so that a test can tell a client left there from one the Listener took and holds.
type countingListener struct {
	net.Listener
	calls, taken atomic.Int64 // Accept calls begun, and those that returned a connection
}

func listenCounting(t *testing.T) *countingListener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	return &countingListener{Listener: inner}
}

func (c *countingListener) Accept() (net.Conn, error) {
	c.calls.Add(1)
	conn, err := c.Listener.Accept()
	if err == nil {
		c.taken.Add(1)
	}
	return conn, err
}

// acceptLoop accepts on l until Accept fails, sending each connection on the channel it
// returns, and closing it then. At the test's end it closes l and waits for Accept to end.
func acceptLoop(t *testing.T, l *Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 8)
	go func() {
		defer close(ch)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() {
		// The test's connections may have closed first, and Accept returned another.
		l.Close()
		drain(t, ch)
	})
	return ch
}

// next returns the next connection of an acceptLoop, within 10s.
func next(t *testing.T, accepted <-chan net.Conn, what string) net.Conn {
	t.Helper()
	select {
	case c, ok := <-accepted:
		if !ok {
			t.Fatalf("%s: Accept failed", what)
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("not within 10s: %s accepted", what)
		return nil
	}
}

// noneAccepted checks that an acceptLoop brings no connection for a while.
func noneAccepted(t *testing.T, accepted <-chan net.Conn, what string) {
	t.Helper()
	select {
	case c, ok := <-accepted:
		if ok {
			c.Close()
		}
		t.Fatalf("%s was accepted (or Accept failed: %v)", what, !ok)
	case <-time.After(100 * time.Millisecond):
	}
}

// acceptEnds checks that an acceptLoop's Accept fails within 10s (its listener closed),
// having returned no further connection.
func acceptEnds(t *testing.T, accepted <-chan net.Conn) {
	t.Helper()
	if n := drain(t, accepted); n > 0 {
		t.Errorf("Accept returned %d connections after Close", n)
	}
}

// drain closes the connections an acceptLoop brings until its Accept fails, and returns
// how many came; it fails the test when Accept does not fail within 10s.
func drain(t *testing.T, accepted <-chan net.Conn) int {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for n := 0; ; n++ {
		select {
		case c, ok := <-accepted:
			if !ok {
				return n
			}
			c.Close()
		case <-timeout:
			t.Error("Accept did not return within 10s of Close")
			return n
		}
	}
}

// dialRaw opens a TCP connection to addr, closed at the test's end.
func dialRaw(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLimitListener: at the cap with no connection that may be closed for another (no
// ConnState reported), the next client waits in the kernel's backlog, not taken from it,
// until a connection closes; Close ends an Accept waiting so.
func TestLimitListener(t *testing.T) {
	inner := listenCounting(t)
	ln := LimitListener(inner, 1)
	accepted := acceptLoop(t, ln)
	dialRaw(t, inner.Addr())
	dialRaw(t, inner.Addr())
	first := next(t, accepted, "the first connection")
	noneAccepted(t, accepted, "a second connection while the first is open")
	if ln.Open() != 1 {
		t.Errorf("Open = %d, want 1", ln.Open())
	}
	if n := inner.taken.Load(); n != 1 {
		// Mutation testing: Accept that took the next client at the cap, to hold it, passed.
		t.Errorf("%d connections taken from the kernel's backlog at a cap of 1, want 1: the second waits there", n)
	}
	first.Close()
	next(t, accepted, "the second connection, after the first closed")
	dialRaw(t, inner.Addr())
	noneAccepted(t, accepted, "a third connection while the second is open")
	ln.Close()
	acceptEnds(t, accepted)
	if n := inner.taken.Load(); n != 2 {
		t.Errorf("%d connections taken from the kernel's backlog, want 2: the third waits there", n)
	}
}

// TestLimitListener_CloseWhileHolding: Close ends an Accept that holds a client it took
// while a connection could be closed for it, and waits for a slot because that connection
// became active meanwhile (the one connection beyond the cap); the client is closed.
func TestLimitListener_CloseWhileHolding(t *testing.T) {
	inner := listenCounting(t)
	ln := LimitListener(inner, 1)
	accepted := acceptLoop(t, ln)
	dialRaw(t, inner.Addr())
	first := next(t, accepted, "the first connection")
	ln.ConnState(first, http.StateNew)
	waitFor(t, "Accept called for a second client, the first connection closable for it", func() bool { return inner.calls.Load() == 2 })
	ln.ConnState(first, http.StateActive)
	held := dialRaw(t, inner.Addr())
	waitFor(t, "the second client taken from the kernel's backlog", func() bool { return inner.taken.Load() == 2 })
	noneAccepted(t, accepted, "a second connection while the first serves a request")
	ln.Close()
	acceptEnds(t, accepted)
	closedByServer(t, held, "the client Accept held at Close")
}

// TestLimitListener_IdleBeforeSilent: at the cap, an idle connection is closed for a new
// client before one that has not yet sent its request, even one that waits longer.
func TestLimitListener_IdleBeforeSilent(t *testing.T) {
	s := newConnServer(t, 2)
	silent, _ := s.dial(t, "")
	s.until(t, "one silent connection", func(l *Listener) bool { return l.fresh.Len() == 1 })
	c, r := s.dial(t, "/x")
	get(t, c, r, "the second connection")
	s.until(t, "the second connection idle", func(l *Listener) bool { return l.idle.Len() == 1 })
	c3, r3 := s.dial(t, "/x")
	get(t, c3, r3, "a client at the cap")
	closedByServer(t, c, "the idle connection")
	if s.serverClosed(silent) {
		t.Error("the silent connection was closed, though an idle one could be")
	}
}

// TestLimitListener_NoCap: a cap below 1 is none: every client is served, none closed for
// another.
func TestLimitListener_NoCap(t *testing.T) {
	s := newConnServer(t, 0)
	for range 3 {
		s.dial(t, "")
	}
	c, r := s.dial(t, "/x")
	get(t, c, r, "a fourth client")
	if n := s.l.Open(); n != 4 {
		t.Errorf("Open = %d, want 4", n)
	}
	if n := s.l.Evicted(); n != 0 {
		t.Errorf("Evicted = %d, want 0", n)
	}
}

// TestLimitListener_EvictedOnce: a connection closed for another is never closed for a
// third, whatever the server reports of it after: HTTP/2 reports StateIdle as it tears down
// the streams of a closed connection, which may have opened one as it was closed for
// another. Its slot is passed on once.
func TestLimitListener_EvictedOnce(t *testing.T) {
	ln := LimitListener(listenCounting(t), 1)
	accepted := acceptLoop(t, ln)
	dialRaw(t, ln.Addr())
	first := next(t, accepted, "the first connection")
	ln.ConnState(first, http.StateNew)
	dialRaw(t, ln.Addr())
	second := next(t, accepted, "a second client, for which the first is closed")
	ln.ConnState(first, http.StateActive)
	ln.ConnState(first, http.StateIdle)
	ln.ConnState(second, http.StateNew)
	ln.ConnState(second, http.StateActive)
	dialRaw(t, ln.Addr())
	noneAccepted(t, accepted, "a third client while the second serves a request")
	if n := ln.Evicted(); n != 1 {
		t.Errorf("Evicted = %d, want 1", n)
	}
}

// waitFor polls cond until it holds, within 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
	}
}
