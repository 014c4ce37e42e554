package api

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
)

// PersonReads bounds the reads of a person's whole history (History from the stream,
// AuditHistory from the read models) that run at once: a person may have up to
// --max-person-events events (10 000), and each such read decodes all of them. Without the
// bound one kommune asking for its own big person 64 times at once (its share of requests
// in flight) flooded nird's NATS connection and its memory: other kommuner's appends took
// seconds or failed, and nird lost its leases (TestHTTP_HistoryOfItsOwnBigPerson).
//
// A read waits for its turn under its request's context. At most Max run at once over all
// callers, and at most PerPrincipal of them for one principal, so that a principal reading
// at its most leaves room for the others. It is safe for concurrent use; the zero value is
// not usable: use NewPersonReads.
type PersonReads struct {
	all chan struct{} // a slot per read running
	per int

	// mu guards principals.
	mu         sync.Mutex
	principals map[string]*principalReads
}

// principalReads is one principal's reads: slots for those running, users for those
// running or waiting (the entry is forgotten when it falls to 0).
type principalReads struct {
	slots chan struct{}
	users int
}

// NewPersonReads returns a bound of total whole-person reads at once, perPrincipal of them
// for one principal; 0 for total is the number of CPUs (at least 2), 0 for perPrincipal half of total
// (at least 1).
func NewPersonReads(total, perPrincipal int) *PersonReads {
	if total <= 0 {
		total = DefaultPersonReads()
	}
	if perPrincipal <= 0 {
		perPrincipal = max(1, total/2)
	}
	perPrincipal = min(perPrincipal, total)
	return &PersonReads{all: make(chan struct{}, total), per: perPrincipal, principals: map[string]*principalReads{}}
}

// DefaultPersonReads is the number of whole-person reads NewPersonReads lets run at once by
// default: the CPUs nird may use, at least 2.
func DefaultPersonReads() int { return max(2, runtime.GOMAXPROCS(0)) }

// acquire waits until principal may read a whole person and returns the function that ends
// the read; or ctx's error, if ctx ends first.
func (r *PersonReads) acquire(ctx context.Context, principal string) (func(), error) {
	r.mu.Lock()
	p := r.principals[principal]
	if p == nil {
		p = &principalReads{slots: make(chan struct{}, r.per)}
		r.principals[principal] = p
	}
	p.users++
	r.mu.Unlock()
	leave := func() {
		r.mu.Lock()
		if p.users--; p.users == 0 {
			delete(r.principals, principal)
		}
		r.mu.Unlock()
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
	select {
	case r.all <- struct{}{}:
	case <-ctx.Done():
		<-p.slots
		leave()
		return nil, ctx.Err()
	}
	return func() {
		<-r.all
		<-p.slots
		leave()
	}, nil
}

// encodedInSlot returns the answer to send for req: msg itself, or, when req came over HTTP
// asking for binary protobuf (Connect, gRPC or gRPC-Web), a message of msg's type that holds
// msg's encoding, made now, as its unknown fields. Call it while the read's PersonReads slot
// is held: Connect encodes a handler's answer after the handler returned, when its slot is
// free again, so the encoding of a whole person's answer (up to --max-person-events entries;
// about a fifth of an AuditHistory call's CPU in a profile of 16 calls at once on a person of
// 10 000 events) ran outside the bound, for every waiting call at once
// (TestAuditHistory_EncodedInItsSlot). The binary codec writes unknown fields as they are,
// so the client reads the same bytes as before. JSON (for people, with curl) and in-process
// calls (the web console reads the message) get msg itself; the gzip compression a client
// may ask for still runs after the slot.
func encodedInSlot[T any, PT interface {
	*T
	proto.Message
}](req connect.AnyRequest, msg PT) PT {
	if !binaryOverHTTP(req) {
		return msg
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		return msg // the codec will fail on it the same way, and say so
	}
	out := PT(new(T))
	out.ProtoReflect().SetUnknown(b)
	return out
}

// binaryOverHTTP reports whether req came over HTTP and its answer is encoded with the
// binary protobuf codec. Only a POST names its codec in Content-Type: a Connect GET names
// it in the query (encoding=), which a handler cannot see, and a Content-Type header on a
// GET (a client or proxy that sets one on every request) is ignored by Connect; taking it
// for binary sent the JSON of an empty message, "{}" (TestAuditHistory_GetWithStrayContentType).
func binaryOverHTTP(req connect.AnyRequest) bool {
	if req.HTTPMethod() != http.MethodPost {
		return false
	}
	ct, _, _ := strings.Cut(req.Header().Get("Content-Type"), ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	switch req.Peer().Protocol {
	case connect.ProtocolConnect:
		return ct == "application/proto"
	case connect.ProtocolGRPC:
		return ct == "application/grpc" || ct == "application/grpc+proto"
	case connect.ProtocolGRPCWeb:
		return ct == "application/grpc-web" || ct == "application/grpc-web+proto"
	}
	return false
}
