package adversarial

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestNATS_LargeRequestsDrawFromTheBodyBudget: the API draws every body beyond its first
// 64 KiB from --max-body-memory (32 MiB over all requests) before reading it; the NATS
// ingress took a case system's requests of up to 4 MiB with no such budget, only the
// principal's 64 in flight and nird's 256. Case systems, each with its own valid token,
// flood their own subject with 4 MiB requests that decode (1000 registrations with long
// correlation ids), from four connections each: nird's peak (VmHWM) grew 37 -> 269 MiB with
// one case system and 37 -> 412 MiB with two (a reviewer's probe, 2026-12-06). Now a NATS
// request's body is drawn from the same budget as HTTP's before it is decoded and given
// back when it is served, refused at once (ResourceExhausted) when it does not fit, and
// counted as HTTP's refusals are; each case system's connection holds at most
// natsingress.PendingBytes of requests not yet looked at.
//
// Budget: with --max-body-memory at its least (one largest body), a case system's flood of
// requests in protojson (slow to decode: one is still being served when the next comes) has
// requests refused for the budget, answered and counted (30 of 531 in 4 s); before, none
// ever was (0 of 611; now the flood stops at the first counted, or after 20 s). The memory subtests log nird's peak under the reviewer's flood, by
// one and by two case systems, and assert nothing: it barely moved (one 256 -> 240-284 MiB,
// two 415 -> 347-403), for these requests are refused by validation at once and most never
// reach the ingress, whose connection the server cuts as a slow consumer; what grows with
// each case system is the embedded server's max_pending (64 MiB) for that connection and
// its reading of the 4 MiB messages (README, "Each case system apart").
func TestNATS_LargeRequestsDrawFromTheBodyBudget(t *testing.T) {
	tokens, tokOslo, tokBergen := floodTokens(t)
	token := map[string]string{"oslo": tokOslo, "bergen": tokBergen}
	t.Run("Budget", func(t *testing.T) {
		n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo,bergen", "--max-body-memory", strconv.Itoa(4<<20))
		stop := natsFloodAnswered(t, n, "oslo", tokOslo, natsLargeAppend(t, n, true), true)
		// Until a refusal is counted (a second or two), or 20 s.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			time.Sleep(500 * time.Millisecond)
			if metric(t, n, `nir_api_refused_total{limit="body_memory"}`) > 0 {
				break
			}
		}
		sent, refused := stop()
		natsAlive(t, n)
		counted := metric(t, n, `nir_api_refused_total{limit="body_memory"}`)
		t.Logf("%d requests sent, %d answered ResourceExhausted for the body budget; nir_api_refused_total{limit=\"body_memory\"} %v", sent, refused, counted)
		if refused == 0 {
			t.Errorf("no NATS request was answered ResourceExhausted for the body budget: their bodies are not drawn from --max-body-memory")
		}
		if counted < float64(refused) {
			t.Errorf("nir_api_refused_total{limit=\"body_memory\"} %v, but %d requests were refused for it", counted, refused)
		}
		// Every body drawn is given back once its request is served.
		deadline := time.Now().Add(30 * time.Second)
		for metric(t, n, "nir_api_body_memory_bytes") != 0 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if held := metric(t, n, "nir_api_body_memory_bytes"); held != 0 {
			t.Errorf("nir_api_body_memory_bytes %v after the flood: bodies drawn and never given back", held)
		}
	})
	for _, c := range []struct {
		name  string
		users []string
	}{{"MemoryOneCaseSystem", []string{"oslo"}}, {"MemoryTwoCaseSystems", []string{"oslo", "bergen"}}} {
		t.Run(c.name, func(t *testing.T) {
			n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens, "--nats-case-systems", "oslo,bergen")
			payload := natsLargeAppend(t, n, false)
			_, hwm0 := edgeMemory(t, n)
			var stops []func() (sent, refused int64)
			for _, u := range c.users {
				stops = append(stops, natsFloodAnswered(t, n, u, token[u], payload, false))
			}
			var peak int64
			for range 12 {
				time.Sleep(500 * time.Millisecond)
				_, hwm := edgeMemory(t, n)
				peak = max(peak, hwm)
			}
			var sent, refused int64
			for _, stop := range stops {
				s, r := stop()
				sent, refused = sent+s, refused+r
			}
			natsAlive(t, n)
			t.Logf("%d requests of %d KiB sent, %d refused for the body budget; nird VmHWM %d MiB before, %d MiB during",
				sent, len(payload)>>10, refused, hwm0>>20, peak>>20)
		})
	}
}

// natsLargeAppend is a request of about the largest size a case system may send that
// decodes: 1000 registrations with long correlation ids, for a person nobody registered; in
// protojson if json, else in binary.
func natsLargeAppend(t *testing.T, n *nirdtest.Nird, json bool) []byte {
	t.Helper()
	probe := natsAs(t, n, "oslo")
	if err := probe.nc.Flush(); err != nil { // the server's INFO with the account's most has come
		t.Fatal(err)
	}
	most := min(int(probe.nc.MaxPayload())-4096, natsingress.MaxRequestBytes)
	probe.nc.Close()
	req := &nirv1.AppendRequest{}
	pad := strings.Repeat("x", most/1000-200)
	if json {
		pad = strings.Repeat("x", most/1000-400)
	}
	for range 1000 {
		req.Registrations = append(req.Registrations, &nirv1.Registration{
			Person: &nirv1.PersonRef{PersonKey: strings.Repeat("a", 64)},
			Event: &nirv1.Event{Id: "01HZX3J5Q8RBN0M9T7W2K4C6D2", Kommune: "0301", CorrelationId: pad,
				Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}})
	}
	marshal := proto.Marshal
	if json {
		marshal = protojson.Marshal
	}
	payload, err := marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(payload) > most || len(payload) < most-256<<10 {
		t.Fatalf("payload %d bytes, want just under %d", len(payload), most)
	}
	return payload
}

// natsFloodAnswered sends payload as case system user's append request with token from four
// connections (in protojson if json), as fast as they take them, until the function it returns is called; that
// returns how many were sent and how many were answered ResourceExhausted for the body
// budget (the answers come on an inbox of each connection's).
func natsFloodAnswered(t *testing.T, n *nirdtest.Nird, user, token string, payload []byte, json bool) (stop func() (sent, refused int64)) {
	t.Helper()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var sent, refused atomic.Int64
	for range 4 {
		c := natsAs(t, n, user)
		inbox := c.nc.NewInbox()
		if _, err := c.nc.Subscribe(inbox, func(m *nats.Msg) {
			if m.Header.Get(micro.ErrorCodeHeader) == "resource_exhausted" && strings.Contains(m.Header.Get(micro.ErrorHeader), "large request bodies") {
				refused.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				m := nats.NewMsg(natsingress.RequestSubject(user))
				m.Data = payload
				m.Header.Set("Authorization", "Bearer "+token)
				if json {
					m.Header.Set("Content-Type", "application/json")
				}
				m.Reply = inbox
				if err := c.nc.PublishMsg(m); err != nil {
					return
				}
				sent.Add(1)
				_ = c.nc.Flush()
			}
		})
	}
	var once sync.Once
	return func() (int64, int64) {
		once.Do(func() {
			close(quit)
			wg.Wait()
			time.Sleep(time.Second) // the last answers
		})
		return sent.Load(), refused.Load()
	}
}
