package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/natsingress"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// manyEmpty returns a body of just under n bytes holding as many copies of unit as fit
// between head and tail.
func manyEmpty(n int, head, unit, tail string) []byte {
	var b bytes.Buffer
	b.WriteString(head)
	for b.Len()+len(unit)+len(tail) < n {
		b.WriteString(unit)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// allocated returns the bytes the process allocated while fn ran (nird's handlers run in
// the test's process here).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecoding_ManyEmptyRegistrations: an append of a body nird reads (just under 4 MiB)
// made of empty registrations, each 2 bytes of protobuf or 3 of JSON, is refused as more
// than any valid request holds before it is decoded, over HTTP (protobuf, JSON, and
// protobuf gzip-compressed to a few KiB) and NATS. Before, each was decoded first: some 2
// million registrations, 200–300 MiB of the heap for one request, which the append path then
// refused for holding more than 1 000 (and over HTTP gzip, a body of 4 KiB did it). The
// bound is measured by the bytes the test process, where the handlers run, allocates.
func TestDecoding_ManyEmptyRegistrations(t *testing.T) {
	s := startServer(t)
	size := natsingress.MaxRequestBytes - 1024
	binary := manyEmpty(size, "", "\x0a\x00", "")
	json := manyEmpty(size, `{"registrations":[{}`, `,{}`, `]}`)
	// A registration with an empty event: 4 bytes, two messages.
	withEvents := manyEmpty(size, "", "\x0a\x02\x12\x00", "")
	const most = 64 << 20 // the body, Connect's buffers and the client's copies
	for _, c := range []struct {
		name string
		send func() result
	}{
		{"connect-proto", func() result { return postRaw(t, s, tokOslo, "application/proto", binary) }},
		{"connect-proto-events", func() result { return postRaw(t, s, tokOslo, "application/proto", withEvents) }},
		{"connect-json", func() result { return postRaw(t, s, tokOslo, "application/json", json) }},
		{"connect-proto-gzip", func() result {
			return postRaw(t, s, tokOslo, "application/proto", gzipped(t, binary), "Content-Encoding", "gzip")
		}},
		{"nats-proto", func() result { return natsRequest(t, s, tokOslo, "", binary) }},
		{"nats-json", func() result { return natsRequest(t, s, tokOslo, "application/json", json) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r result
			n := allocated(func() { r = c.send() })
			if r.raw != nil {
				t.Fatalf("transport error: %v", r.raw)
			}
			if r.code != connect.CodeInvalidArgument || !strings.Contains(r.msg, "more messages, list entries or nesting than any valid request") {
				t.Errorf("answer %v %q, want InvalidArgument saying the request holds more than any valid one", r.code, r.msg)
			}
			if n > most {
				t.Errorf("one refused request allocated %d MiB, want at most %d MiB", n>>20, most>>20)
			}
			t.Logf("allocated %d MiB", n>>20)
		})
	}
}

// TestDecoding_GzipBomb: a gzip body of 64 KiB (the part of a body nird's edge lets any
// request have without drawing on the body budget) that inflates to 64 MiB is refused
// once it has inflated past the 4 MiB nird reads. Before, Connect went on inflating to the
// end of the stream to say how large the message was, 64 MiB of work for nothing, at the
// principal's rate (and a body of 4 MiB inflates to 4 GB). The test tells how far nird
// inflated by the stream's trailer, which gzip checks only at the end: it is made wrong
// here, so a server that inflated all of it answers "invalid checksum".
func TestDecoding_GzipBomb(t *testing.T) {
	s := startServer(t)
	bomb := gzipped(t, make([]byte, 64<<20))
	bomb[len(bomb)-8] ^= 0xff // the CRC-32 of the trailer
	if len(bomb) > 64<<10 {
		t.Fatalf("the bomb is %d bytes, more than the free part of a body", len(bomb))
	}
	r := postRaw(t, s, tokOslo, "application/proto", bomb, "Content-Encoding", "gzip")
	if r.raw != nil {
		t.Fatalf("transport error: %v", r.raw)
	}
	if r.code != connect.CodeResourceExhausted || !strings.Contains(r.msg, "larger than configured max") {
		t.Errorf("answer %v %q, want ResourceExhausted saying the message is too large", r.code, r.msg)
	}
	t.Logf("answer: %v %q", r.code, r.msg)
	if strings.Contains(r.msg, "checksum") {
		t.Errorf("answer %q: nird inflated the whole 64 MiB to its trailer", r.msg)
	}
	// A valid compressed request is still read.
	req := manyEmpty(0, "", "", "\x0a\x00")
	if r := postRaw(t, s, tokOslo, "application/proto", gzipped(t, req), "Content-Encoding", "gzip"); r.code != connect.CodeInvalidArgument || !strings.Contains(r.msg, "registration") {
		t.Errorf("a small gzip request: %v %q, want the append path's InvalidArgument on its registration", r.code, r.msg)
	}
}

// fill sets every singular message field below m, of a oneof the member holding the most,
// and returns how many messages m then holds.
func fill(m protoreflect.Message) int {
	n := 1
	best := map[protoreflect.OneofDescriptor]protoreflect.FieldDescriptor{}
	most := map[protoreflect.OneofDescriptor]int{}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Message() == nil || fd.IsList() || fd.IsMap() {
			continue
		}
		sub := m.NewField(fd).Message()
		c := fill(sub)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if c > most[od] {
				best[od], most[od] = fd, c
			}
			continue
		}
		m.Set(fd, protoreflect.ValueOfMessage(sub))
		n += c
	}
	for od, fd := range best {
		sub := m.NewField(fd).Message()
		fill(sub)
		m.Set(fd, protoreflect.ValueOfMessage(sub))
		n += most[od]
	}
	return n
}

// TestUnmarshal_LargestValidRequest: the bound leaves room for an append of the most
// registrations the append path takes, each holding every message a registration can
// (its event's largest payload), in protobuf and in JSON.
func TestUnmarshal_LargestValidRequest(t *testing.T) {
	reg := &nirv1.Registration{}
	per := fill(reg.ProtoReflect())
	req := &nirv1.AppendRequest{}
	for range ingest.DefaultMaxRegistrations {
		req.Registrations = append(req.Registrations, reg)
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	j, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		json bool
	}{{"proto", b, false}, {"json", j, true}} {
		got := &nirv1.AppendRequest{}
		if err := api.Unmarshal(c.data, c.json, got); err != nil {
			t.Errorf("%s: %d registrations of %d messages: %v", c.name, len(req.Registrations), per, err)
		} else if !proto.Equal(got, req) {
			t.Errorf("%s: decoded another request", c.name)
		}
	}
	// One registration more is still the append path's to refuse, saying how many it takes.
	req.Registrations = append(req.Registrations, reg)
	if b, err = proto.Marshal(req); err != nil {
		t.Fatal(err)
	}
	if err := api.Unmarshal(b, false, &nirv1.AppendRequest{}); err != nil {
		t.Errorf("%d registrations: %v", len(req.Registrations), err)
	}
	t.Logf("%d messages a registration", per)
}

// TestDecoding_NoBound: Decoding(0) reads and inflates without a bound, as Connect's
// ReadMaxBytes 0 does (its gzip is not cut after a byte): a compressed append reaches the
// handler, which asks for a principal (none here, without the guard).
func TestDecoding_NoBound(t *testing.T) {
	s := startServer(t)
	mux := http.NewServeMux()
	mux.Handle(nirv1connect.NewRegistrationServiceHandler(s.reg, api.Decoding(0)))
	hs := httptest.NewServer(mux)
	defer hs.Close()
	unbound := &server{url: hs.URL}
	r := postRaw(t, unbound, "", "application/proto", gzipped(t, []byte("\x0a\x00")), "Content-Encoding", "gzip")
	if r.code != connect.CodeUnauthenticated {
		t.Errorf("answer %v %q, want the handler's Unauthenticated", r.code, r.msg)
	}
}

// TestDecoding_BinaryUnknownFieldRefused: a binary request holding a field the schema does
// not define is refused naming it, as a JSON one is (StrictJSON). Before, only an append's
// registrations were checked: a History or a query with a newer client's field (number 111
// here) was answered without it, wider than asked.
func TestDecoding_BinaryUnknownFieldRefused(t *testing.T) {
	s := startServer(t)
	body, err := proto.Marshal(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: "k"}})
	if err != nil {
		t.Fatal(err)
	}
	body = protowire.AppendVarint(protowire.AppendTag(body, 111, protowire.VarintType), 1)
	req, err := http.NewRequest(http.MethodPost, s.url+nirv1connect.RegistrationServiceHistoryProcedure, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Authorization", "Bearer "+tokOslo)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "request: holds fields this nird's schema does not define") {
		t.Errorf("HTTP %d %s, want 400 naming the request's unknown field", resp.StatusCode, msg)
	}
}
