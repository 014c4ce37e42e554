package adversarial

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/natsauth"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/nirdtest"
)

// natsRaw is a connection to nird's embedded server that speaks the NATS protocol itself,
// as a hostile client may: nats.go sends only headers it can encode.
type natsRaw struct {
	conn net.Conn
	r    *bufio.Reader
}

// natsRawAs connects to nird's embedded server as user, with the nkey of the context nird
// wrote, and subscribes to reply, the inbox the requests name.
func natsRawAs(t *testing.T, n *nirdtest.Nird, user, reply string) *natsRaw {
	t.Helper()
	b, err := os.ReadFile(n.NATSContext(user))
	if err != nil {
		t.Fatal(err)
	}
	var c natsauth.Context
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(c.NKey)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.URL, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	raw := &natsRaw{conn: conn, r: bufio.NewReader(conn)}
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(raw.line(t)), "INFO ")), &info); err != nil {
		t.Fatal(err)
	}
	sig, err := kp.Sign([]byte(info.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	connect, _ := json.Marshal(map[string]any{"nkey": pub, "sig": base64.RawURLEncoding.EncodeToString(sig),
		"headers": true, "protocol": 1, "verbose": false, "pedantic": false})
	raw.write(t, fmt.Sprintf("CONNECT %s\r\nSUB %s 1\r\nPING\r\n", connect, reply))
	for l := raw.line(t); !strings.HasPrefix(l, "PONG"); l = raw.line(t) {
		if strings.HasPrefix(l, "-ERR") {
			t.Fatalf("connect as %s: %s", user, l)
		}
	}
	return raw
}

func (c *natsRaw) write(t *testing.T, s string) {
	t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// line reads one protocol line, within 10 s.
func (c *natsRaw) line(t *testing.T) string {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("NATS protocol: %v", err)
	}
	return l
}

// requests sends count messages on subject with reply subject reply, header block hdr
// (as sent, "NATS/1.0\r\n…\r\n\r\n") and payload, in batches that each wait for their
// answers: none is lost to the ingress's pending limits, and each was handled.
func (c *natsRaw) requests(t *testing.T, count int, subject, reply, hdr, payload string) {
	t.Helper()
	const batch = 250
	for sent := 0; sent < count; sent += batch {
		var b strings.Builder
		for range min(batch, count-sent) {
			fmt.Fprintf(&b, "HPUB %s %s %d %d\r\n%s%s\r\n", subject, reply, len(hdr), len(hdr)+len(payload), hdr, payload)
		}
		c.write(t, b.String())
		for answered := 0; answered < min(batch, count-sent); {
			if l := c.line(t); strings.HasPrefix(l, "MSG ") || strings.HasPrefix(l, "HMSG ") {
				answered++
			} else if strings.HasPrefix(l, "-ERR") {
				t.Fatalf("request %d: %s", sent+answered, l)
			}
		}
	}
}

// fire sends count messages on subject as requests does, without waiting for answers (a
// service may drop them), then waits for the server to have taken them all.
func (c *natsRaw) fire(t *testing.T, count int, subject, reply, hdr, payload string) {
	t.Helper()
	var b strings.Builder
	for range count {
		fmt.Fprintf(&b, "HPUB %s %s %d %d\r\n%s%s\r\n", subject, reply, len(hdr), len(hdr)+len(payload), hdr, payload)
	}
	b.WriteString("PING\r\n")
	c.write(t, b.String())
	for l := c.line(t); !strings.HasPrefix(l, "PONG"); l = c.line(t) {
		if strings.HasPrefix(l, "-ERR") {
			t.Fatalf("%s: %s", subject, l)
		}
	}
}

// natsLogLines counts nird's log lines that hold want, polling for 2 s: asynchronous errors
// are logged after the request is answered.
func natsLogLines(n *nirdtest.Nird, want string) int {
	count := func() int {
		c := 0
		for _, l := range n.Logs() {
			if strings.Contains(l, want) {
				c++
			}
		}
		return c
	}
	was := count()
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		now := count()
		if now == was {
			return now
		}
		was = now
	}
	return was
}

// TestNATS_RequestsFloodTheLog: a case system's requests, each as cheap to send as a NATS
// message is, must not each make nird write a line to its log: at NATS's rate the log
// fills nird's disk.
//
// MalformedHeaders: requests whose header block nats.go cannot decode (a line without a
// colon). The server passes the block on as sent; nats.go hands the ingress the request
// without headers and reports ErrBadHeaderMsg on the connection, which nird logged once a
// request, as a Warn ("NATS error on the ingress connection"): 5 000 requests, 5 000
// lines. Now it is counted and logged at most once a minute, as the connection's refused
// publishes and slow consumers are.
//
// ReaderMalformedHeaders: the same from the read-only user, whose consumer creations nird
// serves on its event store's connection (eventstore.ServeReaderConsumers): that
// connection logged each undecodable header block as a Warn, 5 000 lines for 5 000
// messages. Now once a minute.
//
// NoToken: requests with a token nird does not know. The guard logged each refusal, at
// Info ("unauthenticated request refused"), before the principal's rate limit can apply
// (there is no principal): 5 000 requests, 5 000 lines, and as many over HTTP at its rate.
// Now the guard logs its refusals in a bucket (auth.RefusalLogBurst, then one a second)
// and notes how many it left out; the metric counts them all.
func TestNATS_RequestsFloodTheLog(t *testing.T) {
	tokens, tokOslo, _ := floodTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo")
	oslo := natsAs(t, n, "oslo")
	reply := natsingress.Inbox("oslo") + ".flood"
	raw := natsRawAs(t, n, "oslo", reply)
	const flood = 5000
	t.Run("MalformedHeaders", func(t *testing.T) {
		raw.requests(t, flood, natsingress.RequestSubject("oslo"), reply, "NATS/1.0\r\nno colon "+natsNationalID+"\r\n\r\n", "x")
		natsAppendOK(t, oslo, tokOslo, natsRegistration(0))
		if lines := natsLogLines(n, "component=natsingress"); lines > 2 {
			t.Errorf("%d requests with malformed headers made %d lines of the ingress's in nird's log", flood, lines)
		}
		natsAlive(t, n)
		natsNoNationalIDInLog(t, n)
	})
	// The reader's consumer creations reach nird's event store connection
	// (eventstore.ServeReaderConsumers), which logged each undecodable header block too.
	t.Run("ReaderMalformedHeaders", func(t *testing.T) {
		reply := natsingress.Inbox(natsauth.Reader) + ".flood"
		reader := natsRawAs(t, n, natsauth.Reader, reply)
		was := len(n.Logs())
		reader.fire(t, flood, "$JS.API.CONSUMER.CREATE."+eventstore.StreamName, reply, "NATS/1.0\r\nno colon\r\n\r\n", "{}")
		natsAppendOK(t, oslo, tokOslo, natsRegistration(2))
		if lines := natsLogLines(n, "") - was; lines > 20 {
			t.Errorf("the reader's %d consumer creations with malformed headers made %d lines in nird's log", flood, lines)
		}
		natsAlive(t, n)
	})
	// The reader's direct gets, as fast as it sends them: nird serves them one at a time,
	// each a request to the server, and its subscription holds 256 waiting. nats.go
	// reports a slow consumer each time the subscription starts dropping again, which in a
	// flood was after nearly every request served: 22 to 36 warnings for 5 000 direct gets
	// (2026-12-07), more the longer the flood. Now once a minute.
	t.Run("ReaderDirectGetFlood", func(t *testing.T) {
		reply := natsingress.Inbox(natsauth.Reader) + ".flood"
		reader := natsRawAs(t, n, natsauth.Reader, reply)
		was := natsLogLines(n, "level=WARN")
		reader.fire(t, flood, "$JS.API.DIRECT.GET."+eventstore.StreamName, reply, "NATS/1.0\r\n\r\n", `{"seq":1}`)
		natsAppendOK(t, oslo, tokOslo, natsRegistration(3))
		if lines := natsLogLines(n, "level=WARN") - was; lines > 2 {
			t.Errorf("the reader's %d direct gets made %d warnings in nird's log", flood, lines)
		}
		if natsLogLines(n, "dropped readers' requests") == 0 {
			t.Errorf("the reader's %d direct gets left no line that nird dropped some: the flood did not fill nird's subscription, and the test shows nothing", flood)
		}
		natsAlive(t, n)
	})
	t.Run("NoToken", func(t *testing.T) {
		was := natsLogLines(n, "component=auth")
		raw.requests(t, flood, natsingress.RequestSubject("oslo"), reply, "NATS/1.0\r\nAuthorization: Bearer not-a-token\r\n\r\n", "x")
		natsAppendOK(t, oslo, tokOslo, natsRegistration(1))
		if lines := natsLogLines(n, "component=auth") - was; lines > 100 {
			t.Errorf("%d requests without a valid token made %d lines of the guard's in nird's log", flood, lines)
		}
		if got := metric(t, n, `nir_auth_requests_total{result="unauthenticated"}`); got < 2*flood {
			t.Errorf("nir_auth_requests_total{result=\"unauthenticated\"} %v, want the %d refused requests counted", got, 2*flood)
		}
		natsAlive(t, n)
	})
}
