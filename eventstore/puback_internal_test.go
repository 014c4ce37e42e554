package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// natsGoPubAck is what nats.go's PublishMsg makes of an ack (jetstream/publish.go,
// publishMsg, v1.56.0), the reference readPubAck is held to.
func natsGoPubAck(data []byte) (uint64, bool, error) {
	var resp struct {
		Type  string              `json:"type"`
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return 0, false, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return 0, false, resp.Error
	}
	if resp.PubAck == nil || resp.Stream == "" {
		return 0, false, jetstream.ErrInvalidJSAck
	}
	return resp.Sequence, resp.Duplicate, nil
}

// TestReadPubAck_AsNatsGo: the append path reads a publish's ack by hand where nats.go uses
// encoding/json (issue 17); for the server's templates and for every other text it answers
// as nats.go would: the same sequence and duplicate flag, the same API error (its code, which
// classify branches on), ErrInvalidJSAck for what is no ack. The hand reader takes the
// templates only; the near misses go to encoding/json.
func TestReadPubAck_AsNatsGo(t *testing.T) {
	for _, tt := range []struct {
		ack     string
		scanned bool // read by hand, not by encoding/json
	}{
		{`{"stream":"NIR","seq":1}`, true},
		{`{"stream":"NIR","seq":18446744073709551}`, true},
		{`{"stream":"NIR","seq":42,"duplicate": true}`, true},
		{`{"stream":"NIR","seq":42,"duplicate":true}`, true},
		{`{"stream":"NIR","domain":"hub","seq":7}`, true},
		{`{"stream":"NIR","domain":"","seq":7,"duplicate": true}`, true},
		{`{"stream":"NIR","seq":18446744073709551615}`, false}, // 20 digits: json's
		{`{"stream":"NIR","seq":99999999999999999999}`, false}, // past uint64: json's error
		{`{"stream":"NIR","seq":042}`, false},
		{`{"stream":"NIR","seq":-1}`, false},
		{`{"stream":"NIR","seq":}`, false},
		{`{"stream":"NIR","seq":1,"duplicate": false}`, false},
		{`{"stream":"NIR","seq":1,"val":"3"}`, false},
		{`{"stream":"NIR","seq":1} `, false},
		{`{"stream":"NIR","seq":1`, false},
		{`{"stream":"","seq":1}`, false},
		{`{"stream":"N\"IR","seq":1}`, false},
		{`{"stream":"NIR","domain":"h\"ub","seq":7}`, false},
		{`{"stream":"NIR"}`, false},
		{`{"seq":1,"stream":"NIR"}`, false},
		{`{"stream": "NIR", "seq": 5}`, false},
		{`{"stream":"NIR","seq":5,"batch":"b","count":2}`, false},
		{`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"NIR","seq":0}`, false},
		{`{"type":"io.nats.jetstream.api.v1.pub_ack","error":{"code":503,"err_code":10077,"description":"no room"}}`, false},
		{`{}`, false},
		{``, false},
		{`not json`, false},
	} {
		seq, dup, err := readPubAck([]byte(tt.ack))
		wantSeq, wantDup, wantErr := natsGoPubAck([]byte(tt.ack))
		if seq != wantSeq || dup != wantDup || (err == nil) != (wantErr == nil) {
			t.Errorf("%s: read %d, %v, %v; nats.go reads %d, %v, %v", tt.ack, seq, dup, err, wantSeq, wantDup, wantErr)
		}
		var ae, wantAE *jetstream.APIError
		if errors.As(wantErr, &wantAE) && (!errors.As(err, &ae) || ae.ErrorCode != wantAE.ErrorCode || ae.Code != wantAE.Code) {
			t.Errorf("%s: error %v; nats.go's is the API error %v", tt.ack, err, wantAE)
		}
		if errors.Is(wantErr, jetstream.ErrInvalidJSAck) && !errors.Is(err, jetstream.ErrInvalidJSAck) {
			t.Errorf("%s: error %v; nats.go's is %v", tt.ack, err, wantErr)
		}
		if _, _, ok := scanPubAck([]byte(tt.ack)); ok != tt.scanned {
			t.Errorf("%s: read by hand %v, want %v", tt.ack, ok, tt.scanned)
		}
	}
}

// TestReadPubAck_ServerAcks: the acks the embedded server sends the append path (a message
// stored, its id sent again inside the dedupe window) are the templates read by hand, and a
// refused check is read as nats.go reads it, the conflict classify finds.
func TestReadPubAck_ServerAcks(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := sha256.Sum256([]byte("puback"))
	key := hex.EncodeToString(h[:])
	subject, err := Subject(key)
	if err != nil {
		t.Fatal(err)
	}
	ev := &nirv1.Event{Id: ulid.Make().String(), PersonKey: key, Kommune: "0301", Actor: &nirv1.Actor{Subject: "test"},
		RecordedAt: timestamppb.Now(), Payload: &nirv1.Event_PersonMoved{PersonMoved: &nirv1.PersonMoved{ToKommune: "4601", Date: &nirv1.Date{Year: 2024, Month: 3, Day: 1}}}}
	data, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(expect string) *nats.Msg {
		h := nats.Header{nats.MsgIdHdr: {ev.Id}}
		if expect != "" {
			h[jetstream.ExpectedLastSubjSeqHeader] = []string{expect}
		}
		return &nats.Msg{Subject: subject, Header: h, Data: data}
	}
	var first uint64
	for i, want := range []bool{false, true} { // stored, then a duplicate
		resp, err := s.nc.RequestMsg(msg(""), s.cfg.RequestTimeout)
		if err != nil {
			t.Fatal(err)
		}
		seq, dup, ok := scanPubAck(resp.Data)
		if !ok || dup != want || seq == 0 || i == 1 && seq != first {
			t.Fatalf("ack %s: read by hand %v, seq %d, duplicate %v; want seq %d, duplicate %v", resp.Data, ok, seq, dup, first, want)
		}
		first = seq
	}
	ev.Id = ulid.Make().String()
	if data, err = Encode(ev); err != nil {
		t.Fatal(err)
	}
	seq, dup, err := s.publishOne(ctx, msg("99"))
	if classify(err) != errKindConflict || seq != 0 || dup {
		t.Fatalf("a wrong last sequence: %d, %v, %v; want the server's conflict", seq, dup, err)
	}
}

// FuzzReadPubAck: for any text the server could answer a publish with, readPubAck gives what
// nats.go's PublishMsg gives (natsGoPubAck): the same sequence, duplicate flag, API error code
// and ErrInvalidJSAck; the hand reader's fast path never answers where encoding/json would not.
func FuzzReadPubAck(f *testing.F) {
	for _, s := range []string{
		`{"stream":"NIR","seq":1}`,
		`{"stream":"NIR","seq":42,"duplicate": true}`,
		`{"stream":"NIR","domain":"hub","seq":7,"duplicate":true}`,
		`{"stream":"NIR","seq":18446744073709551615}`,
		`{"stream":"NIR","seq":9999999999999999999}`,
		`{"stream":"NIR","seq":5,"batch":"b","count":2}`,
		`{"stream":"NIR","seq":1,"val":"3"}`,
		`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"NIR","seq":0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		seq, dup, err := readPubAck(data)
		wantSeq, wantDup, wantErr := natsGoPubAck(data)
		if seq != wantSeq || dup != wantDup || (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: read %d, %v, %v; nats.go reads %d, %v, %v", data, seq, dup, err, wantSeq, wantDup, wantErr)
		}
		var ae, wantAE *jetstream.APIError
		if errors.As(wantErr, &wantAE) && (!errors.As(err, &ae) || ae.ErrorCode != wantAE.ErrorCode || ae.Code != wantAE.Code) {
			t.Fatalf("%q: error %v; nats.go's is the API error %v", data, err, wantAE)
		}
		if errors.Is(wantErr, jetstream.ErrInvalidJSAck) != errors.Is(err, jetstream.ErrInvalidJSAck) {
			t.Fatalf("%q: error %v; nats.go's is %v", data, err, wantErr)
		}
		if s, d, ok := scanPubAck(data); ok && (s != wantSeq || d != wantDup || wantErr != nil) {
			t.Fatalf("%q: read by hand %d, %v; nats.go reads %d, %v, %v", data, s, d, wantSeq, wantDup, wantErr)
		}
	})
}
