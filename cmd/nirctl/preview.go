package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// preview runs nird's own append path (internal/api's AppendAs over internal/ingest: the
// validation, the person key, the regelmotor's checks and a kommune's reach) on registrations,
// one request each, over an in-memory copy of the persons' stored history instead of the
// stream. Nothing is sent to nird and nothing is written: it answers what nird would answer
// (issue 11: `rules explain` must be a preview of what nird accepts, sharing its code path).
type preview struct {
	store *memStore
	reg   *api.Registration
	ctx   context.Context
}

// previewConfig configures a preview.
type previewConfig struct {
	// Principal is who the registrations are sent as.
	Principal auth.Principal
	// Now is the register's date for the rules and the recorded time of accepted events.
	Now rules.Date
	// Keys derives person keys; nil means a fresh random secret (keys and computed
	// termination ids then differ from nird's).
	Keys *personkey.Keyer
}

func newPreview(cfg previewConfig) (*preview, error) {
	keys := cfg.Keys
	if keys == nil {
		secret := make([]byte, personkey.SecretSize)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("person key secret: %w", err)
		}
		var err error
		if keys, err = personkey.New(secret); err != nil {
			return nil, err
		}
	}
	oslo := rules.Norway
	at := time.Date(cfg.Now.Y, cfg.Now.M, cfg.Now.D, 12, 0, 0, 0, oslo)
	store := newMemStore()
	svc := ingest.New(ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return at }, Location: oslo, HistoryCache: -1})
	return &preview{store: store, reg: api.NewRegistration(svc, nil, nil), ctx: auth.NewContext(context.Background(), cfg.Principal)}, nil
}

// seed stores a history event (from `nirctl history`) as nird stored it, unchecked.
func (p *preview) seed(ev *nirv1.Event) error {
	if ev.GetPersonKey() == "" {
		return errors.New("a stored event needs its person_key")
	}
	p.store.seed(ev)
	return nil
}

// send sends one registration as its own request and returns nird's answer.
func (p *preview) send(line int, reg *nirv1.Registration) *nirv1.RegistrationOutcome {
	out := &nirv1.RegistrationOutcome{Line: int32(line), EventId: reg.GetEvent().GetId()}
	positions, err := p.reg.AppendAs(p.ctx, &nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg}})
	if err == nil {
		out.Accepted = true
		if len(positions) == 1 {
			out.Duplicate = positions[0].GetDuplicate()
			out.Sequence = p.store.personSeq(positions[0].GetPersonKey(), positions[0].GetSequence())
		}
		return out
	}
	invalidOutcome(out, err)
	return out
}

// invalidOutcome fills a refused outcome from the error nird's API returned.
func invalidOutcome(out *nirv1.RegistrationOutcome, err error) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		out.Code, out.Message = connect.CodeInternal.String(), err.Error()
		return
	}
	out.Code, out.Message = ce.Code().String(), ce.Message()
	for _, d := range ce.Details() {
		switch m, _ := d.Value(); v := m.(type) {
		case *nirv1.FieldViolation:
			out.FieldViolations = append(out.FieldViolations, v)
		case *nirv1.RuleRefusal:
			out.Refusals = append(out.Refusals, v)
		}
	}
}

// persons returns the keys of the persons the preview holds events for, in first-seen order.
func (p *preview) persons() []string { return p.store.keys() }

// events returns a person's events as stored in the preview.
func (p *preview) events(key string) []*nirv1.Event { return p.store.events(key) }

// outcomeText renders an outcome on one line, in nird's words.
func outcomeText(o *nirv1.RegistrationOutcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d %s: ", o.GetLine(), o.GetEventId())
	switch {
	case o.GetDuplicate():
		fmt.Fprintf(&b, "already stored (sequence %d): nothing new is stored", o.GetSequence())
	case o.GetAccepted():
		fmt.Fprintf(&b, "accepted (sequence %d)", o.GetSequence())
	case len(o.GetRefusals()) > 0:
		b.WriteString("refused")
		for _, r := range o.GetRefusals() {
			fmt.Fprintf(&b, "; %s", r.GetMessageNb())
		}
	default:
		fmt.Fprintf(&b, "%s: %s", o.GetCode(), o.GetMessage())
	}
	return b.String()
}

// memStore is ingest.Store over memory: the persons' stored events with the stream's
// semantics an append relies on (one sequence across persons, the expected last sequence per
// person, event ids stored once).
type memStore struct {
	mu     sync.Mutex
	last   uint64
	order  []string
	byKey  map[string][]eventstore.Stored
	byID   map[string]eventstore.Position
	seqIdx map[uint64]uint64 // stream sequence → position in its person's history (1-based)
}

var _ ingest.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{byKey: map[string][]eventstore.Stored{}, byID: map[string]eventstore.Position{}, seqIdx: map[uint64]uint64{}}
}

func (m *memStore) put(ev *nirv1.Event) eventstore.Position {
	key := ev.GetPersonKey()
	if pos, ok := m.byID[ev.GetId()]; ok && ev.GetId() != "" {
		pos.Duplicate = true
		return pos
	}
	if _, ok := m.byKey[key]; !ok {
		m.order = append(m.order, key)
	}
	m.last++
	m.byKey[key] = append(m.byKey[key], eventstore.Stored{Seq: m.last, Event: ev, PersonKey: key})
	m.seqIdx[m.last] = uint64(len(m.byKey[key]))
	pos := eventstore.Position{EventID: ev.GetId(), PersonKey: key, Seq: m.last}
	if ev.GetId() != "" {
		m.byID[ev.GetId()] = pos
	}
	return pos
}

func (m *memStore) seed(ev *nirv1.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.put(ev)
}

// Read implements ingest.Store.
func (m *memStore) Read(_ context.Context, key string) ([]eventstore.Stored, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := append([]eventstore.Stored(nil), m.byKey[key]...)
	var last uint64
	if n := len(h); n > 0 {
		last = h[n-1].Seq
	}
	return h, last, nil
}

// LastSeq implements ingest.Store.
func (m *memStore) LastSeq(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last, nil
}

// After implements ingest.Store.
func (m *memStore) After(_ context.Context, keys []string, seq uint64) (eventstore.After, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var a eventstore.After
	for _, k := range keys {
		if h := m.byKey[k]; len(h) > 0 {
			if h[len(h)-1].Seq > seq {
				return eventstore.After{Newer: true}, nil
			}
			a = eventstore.After{Held: true, Last: m.last}
		}
	}
	return a, nil
}

// ConfirmReads implements ingest.Store: the preview's history is in this process, there is
// no leader to confirm.
func (m *memStore) ConfirmReads(context.Context, time.Time, *eventstore.Reads) error { return nil }

// LeaderLastSeq implements ingest.Store: the preview is its own leader.
func (m *memStore) LeaderLastSeq(ctx context.Context) (uint64, error) { return m.LastSeq(ctx) }

// DuplicateWindow implements ingest.Store: the preview has no dedupe window of its own
// (the configured one counts).
func (m *memStore) DuplicateWindow() time.Duration { return 0 }

// Append implements ingest.Store: all persons' events or none.
func (m *memStore) Append(_ context.Context, batch ...eventstore.PersonAppend) ([]eventstore.Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, pa := range batch {
		var last uint64
		if h := m.byKey[pa.PersonKey]; len(h) > 0 {
			last = h[len(h)-1].Seq
		}
		if pa.ExpectedLastSeq != nil && *pa.ExpectedLastSeq != last {
			return nil, fmt.Errorf("%w: person at %d, expected %d", eventstore.ErrConflict, last, *pa.ExpectedLastSeq)
		}
	}
	var out []eventstore.Position
	for _, pa := range batch {
		for _, ev := range pa.Events {
			out = append(out, m.put(ev))
		}
	}
	return out, nil
}

func (m *memStore) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.order...)
}

func (m *memStore) events(key string) []*nirv1.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*nirv1.Event
	for _, s := range m.byKey[key] {
		out = append(out, s.Event)
	}
	return out
}

func (m *memStore) personSeq(_ string, seq uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seqIdx[seq]
}

// loadKeys reads nird's person key secret from path, which must exist (nirctl never creates
// one).
func loadKeys(path string) (*personkey.Keyer, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--person-key-file: %w", err)
	}
	return personkey.LoadOrCreate(path)
}
