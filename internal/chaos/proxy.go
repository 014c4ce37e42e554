package chaos

import (
	"net"
	"sync"
)

// Proxy forwards TCP connections from a loopback port to a target, so that the nemesis can
// cut one link between two processes (two NATS nodes, or a nird and a NATS node) without
// touching the machine's network: a real partition for the two ends, nothing for the rest.
//
// A partition can look two ways. Hold (the default fault) stops forwarding in both
// directions while keeping the connections open, as a network that drops packets does:
// TCP retransmits, nothing arrives, and neither end notices until its own timeouts or pings
// say so; when the partition heals, what was held is delivered. Reset closes every
// connection and refuses new ones, as a peer that is gone does.
type Proxy struct {
	ln     net.Listener
	target string

	// mu guards held, refused, conns and gate; gate is closed (and replaced on Hold) when
	// forwarding may go on.
	mu      sync.Mutex
	held    bool
	refused bool
	conns   map[net.Conn]struct{}
	gate    chan struct{}
	wg      sync.WaitGroup
}

// NewProxy listens on a random loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, gate: make(chan struct{})}
	close(p.gate)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listen address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Hold stops forwarding (a partition that drops packets).
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held {
		p.held = true
		p.gate = make(chan struct{})
	}
}

// Reset closes every connection and refuses new ones until Heal.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.refused = true
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Heal forwards again and accepts new connections.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = false
	if p.held {
		p.held = false
		close(p.gate)
	}
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Heal()
	p.Reset()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused := p.refused
		p.mu.Unlock()
		if refused {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.refused {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.copy(up, c); done <- struct{}{} }()
	go func() { p.copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// copy forwards src to dst, waiting at the gate before each write.
func (p *Proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// EOF or a closed connection: serve closes both ends.
			return
		}
	}
}
