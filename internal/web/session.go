package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/introreg/nir/internal/auth"
)

// Identity is who a log-in found: the principal the API's authorization sees, and how to
// check on each request that it still holds (a token removed from the token file ends every
// session made with it at the next request). Revalidate may be nil (an identity provider
// whose answer holds until the session expires).
type Identity struct {
	Principal  auth.Principal
	Revalidate func() (auth.Principal, error)
	// Method names the log-in method in logs ("token", "idporten").
	Method string
}

// Cookie names. The session cookie holds only a random id; everything else stays on the
// server.
const (
	sessionCookie = "nir_okt"
	loginCookie   = "nir_innlogging"
)

// Session bounds (the defaults of Config).
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 8 * time.Hour
	// DefaultMaxSessionsPerPrincipal bounds the sessions of one principal (one token): a
	// log-in beyond it ends that principal's least recently used session, so a principal
	// that logs in again is never refused, and no principal can hold more of the table. A
	// kommune's caseworkers may share its token, so the bound leaves room for a large
	// kommune's office; 250 principals at their bound fill the table.
	DefaultMaxSessionsPerPrincipal = 200
	// DefaultMaxSessions bounds the sessions held in memory over all principals; a log-in
	// beyond it is refused until some expire. With every principal bounded it is reached
	// only by more than DefaultMaxSessions/DefaultMaxSessionsPerPrincipal principals at once.
	DefaultMaxSessions = 50000
	// sweepInterval is how often expired sessions, and those whose token no longer
	// authenticates, are dropped from the table: at most once per interval at a log-in, and
	// on a timer while the console runs.
	sweepInterval = time.Minute
)

// session is one logged-in browser.
type session struct {
	key      [sha256.Size]byte // the hash of the cookie value, its key in byHash
	id       Identity
	csrf     string
	created  time.Time
	lastSeen time.Time
	// lastSeq is the stream sequence of the session's latest registration.
	lastSeq atomic.Uint64
}

// sessions keeps the sessions in memory, keyed by the SHA-256 of the cookie value, so a
// lookup's timing says nothing about the value. A restart of nird logs everyone out.
//
// Each principal holds at most perPrincipal sessions (its log-in beyond them ends its least
// recently used one), so one principal cannot fill the table and lock the others out. A
// log-in looks at its own principal's sessions only; the whole table is swept at most once
// per sweepInterval (sweepDue), dropping the expired sessions and those whose token no
// longer authenticates.
type sessions struct {
	idle, max    time.Duration
	perPrincipal int
	total        int
	secure       bool
	now          func() time.Time

	mu          sync.Mutex // guards the fields below
	byHash      map[[sha256.Size]byte]*session
	byPrincipal map[auth.Principal][]*session
	nextSweep   time.Time
	sweeping    bool
}

var errTooManySessions = errors.New("too many sessions")

func newSessions(idle, max time.Duration, perPrincipal, total int, secure bool, now func() time.Time) *sessions {
	return &sessions{idle: idle, max: max, perPrincipal: perPrincipal, total: total, secure: secure, now: now,
		byHash: map[[sha256.Size]byte]*session{}, byPrincipal: map[auth.Principal][]*session{}, nextSweep: now().Add(sweepInterval)}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("web: crypto/rand: " + err.Error()) // cannot happen on a supported platform
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashOf(v string) [sha256.Size]byte { return sha256.Sum256([]byte(v)) }

// start makes a new session for id and sets its cookie. A session id is never reused, so a
// session fixed before log-in is worthless. The principal's expired sessions go, and when it
// still holds perPrincipal, its least recently used one ends. It costs O(perPrincipal)
// under the lock, plus a sweep of the whole table at most once per sweepInterval.
func (s *sessions) start(w http.ResponseWriter, r *http.Request, id Identity) error {
	now := s.now()
	value := randomToken()
	p := id.Principal
	s.mu.Lock()
	own := slices.DeleteFunc(s.byPrincipal[p], func(ss *session) bool {
		if s.expired(ss, now) {
			delete(s.byHash, ss.key)
			return true
		}
		return false
	})
	if len(own) >= s.perPrincipal {
		lru := 0
		for i, ss := range own {
			if ss.lastSeen.Before(own[lru].lastSeen) {
				lru = i
			}
		}
		delete(s.byHash, own[lru].key)
		own = slices.Delete(own, lru, lru+1)
	}
	if len(s.byHash) >= s.total {
		if len(own) == 0 {
			delete(s.byPrincipal, p)
		} else {
			s.byPrincipal[p] = own
		}
		s.mu.Unlock()
		s.sweepDue(now)
		return errTooManySessions
	}
	ss := &session{key: hashOf(value), id: id, csrf: randomToken(), created: now, lastSeen: now}
	s.byHash[ss.key] = ss
	s.byPrincipal[p] = append(own, ss)
	s.mu.Unlock()
	s.setCookie(w, r, sessionCookie, value, s.max)
	s.sweepDue(now)
	return nil
}

// removeLocked drops ss from the table (it may be gone already).
func (s *sessions) removeLocked(ss *session) {
	if s.byHash[ss.key] != ss {
		return
	}
	delete(s.byHash, ss.key)
	own := s.byPrincipal[ss.id.Principal]
	if i := slices.Index(own, ss); i >= 0 {
		own = slices.Delete(own, i, i+1)
	}
	if len(own) == 0 {
		delete(s.byPrincipal, ss.id.Principal)
	} else {
		s.byPrincipal[ss.id.Principal] = own
	}
}

// sweepDue sweeps the table when the last sweep is sweepInterval old, and no other sweep
// runs.
func (s *sessions) sweepDue(now time.Time) {
	s.mu.Lock()
	due := !s.sweeping && !now.Before(s.nextSweep)
	if due {
		s.sweeping = true
		s.nextSweep = now.Add(sweepInterval)
	}
	s.mu.Unlock()
	if due {
		s.sweep(now)
		s.mu.Lock()
		s.sweeping = false
		s.mu.Unlock()
	}
}

// sweep drops the expired sessions, and the sessions whose identity no longer holds (a
// token removed from the token file): their slots are free at once, not only at their
// next request or when they idle out. Identities are revalidated outside the lock.
func (s *sessions) sweep(now time.Time) {
	var check []*session
	s.mu.Lock()
	for _, ss := range s.byHash {
		switch {
		case s.expired(ss, now):
			s.removeLocked(ss)
		case ss.id.Revalidate != nil:
			check = append(check, ss)
		}
	}
	s.mu.Unlock()
	var revoked []*session
	for _, ss := range check {
		if p, err := ss.id.Revalidate(); err != nil || p != ss.id.Principal {
			revoked = append(revoked, ss)
		}
	}
	if len(revoked) == 0 {
		return
	}
	s.mu.Lock()
	for _, ss := range revoked {
		s.removeLocked(ss)
	}
	s.mu.Unlock()
}

// run sweeps the table every sweepInterval until ctx is done, so that sessions go also
// while nobody logs in.
func (s *sessions) run(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweepDue(s.now())
		}
	}
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) > s.idle || now.Sub(ss.created) > s.max
}

// sessionState is what a request's cookie says.
type sessionState int

const (
	noSession sessionState = iota
	expiredSession
	revokedSession
	validSession
)

// lookup returns the request's session, refreshed (idle timeout slides) and revalidated.
func (s *sessions) lookup(r *http.Request) (*session, auth.Principal, sessionState) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, auth.Principal{}, noSession
	}
	h := hashOf(c.Value)
	now := s.now()
	s.mu.Lock()
	ss := s.byHash[h]
	if ss == nil {
		s.mu.Unlock()
		return nil, auth.Principal{}, expiredSession
	}
	if s.expired(ss, now) {
		s.removeLocked(ss)
		s.mu.Unlock()
		return nil, auth.Principal{}, expiredSession
	}
	ss.lastSeen = now
	id := ss.id
	s.mu.Unlock()
	p := id.Principal
	if id.Revalidate != nil {
		np, err := id.Revalidate()
		if err != nil || np != p {
			s.end(r)
			return nil, auth.Principal{}, revokedSession
		}
	}
	return ss, p, validSession
}

// end removes the request's session (log-out).
func (s *sessions) end(r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return
	}
	s.mu.Lock()
	if ss := s.byHash[hashOf(c.Value)]; ss != nil {
		s.removeLocked(ss)
	}
	s.mu.Unlock()
}

// setCookie sets an HttpOnly, SameSite=Strict cookie for the whole console. It is Secure
// when the request came over TLS or the console is configured so (behind a TLS proxy).
func (s *sessions) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secure || r.TLS != nil,
	})
}

func (s *sessions) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secure || r.TLS != nil})
}

// validCSRF compares a form's CSRF token with the session's in constant time.
func validCSRF(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// sameOrigin refuses a state-changing request from another site: browsers send Origin
// and Sec-Fetch-Site on every POST. SameSite=Strict and the CSRF token are the other two
// locks.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	return origin == "" || origin == "http://"+r.Host || origin == "https://"+r.Host
}
