package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
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
	// maxSessions bounds the sessions held in memory; log-ins beyond it are refused until
	// some expire.
	maxSessions = 50000
)

// session is one logged-in browser.
type session struct {
	id       Identity
	csrf     string
	created  time.Time
	lastSeen time.Time
	// lastSeq is the stream sequence of the session's latest registration.
	lastSeq atomic.Uint64
}

// sessions keeps the sessions in memory, keyed by the SHA-256 of the cookie value, so a
// lookup's timing says nothing about the value. A restart of nird logs everyone out.
type sessions struct {
	idle, max time.Duration
	secure    bool
	now       func() time.Time

	mu     sync.Mutex // guards byHash
	byHash map[[sha256.Size]byte]*session
}

var errTooManySessions = errors.New("too many sessions")

func newSessions(idle, max time.Duration, secure bool, now func() time.Time) *sessions {
	return &sessions{idle: idle, max: max, secure: secure, now: now, byHash: map[[sha256.Size]byte]*session{}}
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
// session fixed before log-in is worthless.
func (s *sessions) start(w http.ResponseWriter, r *http.Request, id Identity) error {
	now := s.now()
	value := randomToken()
	s.mu.Lock()
	s.sweepLocked(now)
	if len(s.byHash) >= maxSessions {
		s.mu.Unlock()
		return errTooManySessions
	}
	s.byHash[hashOf(value)] = &session{id: id, csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Unlock()
	s.setCookie(w, r, sessionCookie, value, s.max)
	return nil
}

// sweepLocked drops expired sessions.
func (s *sessions) sweepLocked(now time.Time) {
	for k, ss := range s.byHash {
		if s.expired(ss, now) {
			delete(s.byHash, k)
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
		delete(s.byHash, h)
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
	delete(s.byHash, hashOf(c.Value))
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
