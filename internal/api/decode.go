package api

// Decoding a request costs memory for each message and list entry it holds, whatever the
// bytes: an empty Registration is 2 bytes on the wire and some 100 bytes decoded, an empty
// event in it 2 bytes more and 200 bytes more. A 4 MiB body of them decoded into 300 MiB
// before the append path refused it for holding more than 1 000 registrations
// (TestDecoding_ManyEmptyRegistrations), and a gzip body of 4 KiB inflated to that 4 MiB.
// So a request is counted first, without decoding it, and refused when it holds more than
// any valid request does.

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/rules"
)

// MaxRequestValues bounds the messages and list entries one request may hold (a JSON
// request's objects and array entries). A valid registration holds at most 10 messages
// and an append at most ingest.DefaultMaxRegistrations registrations; every other request
// holds a few.
const MaxRequestValues = (ingest.DefaultMaxRegistrations + 1) * 16

// maxRequestDepth bounds how deep a request's messages nest: a valid one nests 6 deep
// (an append's registration's event's payload's sealed identity's date).
const maxRequestDepth = 64

// errTooManyValues refuses a request over MaxRequestValues or maxRequestDepth.
var errTooManyValues = fmt.Errorf("request: holds more messages, list entries or nesting than any valid request (at most %d; an append holds at most %d registrations)",
	MaxRequestValues, ingest.DefaultMaxRegistrations)

// Unmarshal decodes a request (JSON, or binary protobuf) into m once it holds no more than
// MaxRequestValues messages and list entries. A request holding a field the schema does not
// define, in JSON or binary, is refused with *UnknownFieldsError naming where; errors never
// quote a national id. The Connect codecs (Decoding) and the NATS ingress decode with it.
func Unmarshal(data []byte, json bool, m proto.Message) error {
	if json {
		if len(data) == 0 {
			return errors.New("zero-length payload is not a valid JSON object")
		}
		if !jsonWithin(data, MaxRequestValues) {
			return errTooManyValues
		}
		if err := (protojson.UnmarshalOptions{}).Unmarshal(data, m); err != nil {
			if f, ok := jsonUnknownField(data, m.ProtoReflect().Descriptor()); ok {
				return &UnknownFieldsError{Field: f}
			}
			// protojson quotes the value it could not use: a national id sent as a
			// number, or as a field's name, must not come back in the error.
			return errors.New("request: " + rules.RedactInput(err.Error()))
		}
		return nil
	}
	budget := MaxRequestValues
	if !binaryWithin(data, m.ProtoReflect().Descriptor(), &budget, 0) {
		return errTooManyValues
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return err
	}
	// Protobuf keeps fields it does not know; a query holding one (a newer client's filter)
	// was answered without it, wider than asked, though JSON refused it (StrictJSON).
	if f, ok := unknownField(m.ProtoReflect()); ok {
		return &UnknownFieldsError{Field: f}
	}
	return nil
}

// binaryWithin reports whether the binary message b of type md holds at most *budget
// messages and list entries below it, nested at most maxRequestDepth deep, taking them
// from *budget. Bytes it cannot walk are left to proto.Unmarshal to refuse.
func binaryWithin(b []byte, md protoreflect.MessageDescriptor, budget *int, depth int) bool {
	if depth > maxRequestDepth {
		return false
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return true
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		if fd != nil && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return true
			}
			b = b[n:]
			switch {
			case fd.Message() != nil: // a message, a list's or a map's entry
				if *budget--; *budget < 0 || !binaryWithin(v, fd.Message(), budget, depth+1) {
					return false
				}
			case fd.IsList() && (fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.BytesKind):
				*budget--
			case fd.IsList(): // packed: each entry takes a byte at least
				*budget -= len(v)
			}
			if *budget < 0 {
				return false
			}
			continue
		}
		if fd != nil && fd.IsList() {
			if *budget--; *budget < 0 {
				return false
			}
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return true
		}
		b = b[n:]
	}
	return true
}

// jsonWithin reports whether the JSON b holds at most budget objects and array entries
// (counted by the commas between them), nested at most maxRequestDepth deep. It counts
// without parsing: protojson refuses what is not JSON.
func jsonWithin(b []byte, budget int) bool {
	var (
		inString, escaped bool
		arrays            []bool // per open bracket, whether it is an array's
	)
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if c == '{' {
				budget--
			}
			if arrays = append(arrays, c == '['); len(arrays) > maxRequestDepth {
				return false
			}
		case '}', ']':
			if len(arrays) > 0 {
				arrays = arrays[:len(arrays)-1]
			}
		case ',':
			if len(arrays) > 0 && arrays[len(arrays)-1] {
				budget--
			}
		}
		if budget < 0 {
			return false
		}
	}
	return true
}

// Decoding is how nird's Connect handlers read requests: at most readMaxBytes of a body,
// also once decompressed (gzip stops inflating there, where Connect's own went on to the
// end of the stream to say how large it was), counted before it is decoded (Unmarshal),
// and a request holding a field the schema does not define refused with a FieldViolation
// naming where (unknownfield.go), by an interceptor of its own: give it after the
// interceptors that must run first (the guard's).
func Decoding(readMaxBytes int) connect.HandlerOption {
	inflated := int64(readMaxBytes) + 1
	if readMaxBytes <= 0 { // no bound, as Connect's ReadMaxBytes
		inflated = math.MaxInt64
	}
	return connect.WithHandlerOptions(
		connect.WithReadMaxBytes(readMaxBytes),
		connect.WithCodec(boundedProto{}),
		StrictJSON(), // and refuseMarked, for both codecs
		connect.WithCompression("gzip",
			func() connect.Decompressor { return &cappedGzip{limit: inflated} },
			func() connect.Compressor { return gzip.NewWriter(io.Discard) }),
	)
}

// boundedProto is Connect's binary protobuf codec, decoding with Unmarshal.
type boundedProto struct{}

func (boundedProto) Name() string { return "proto" }

func (boundedProto) Marshal(m any) ([]byte, error) {
	pm, err := protoMessage(m)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(pm)
}

func (boundedProto) Unmarshal(data []byte, m any) error {
	pm, err := protoMessage(m)
	if err != nil {
		return err
	}
	return markUnknown(pm, Unmarshal(data, false, pm))
}

// MarshalStable and IsBinary serve Connect's GET requests, as its own codec does.
func (boundedProto) MarshalStable(m any) ([]byte, error) {
	pm, err := protoMessage(m)
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(pm)
}

func (boundedProto) IsBinary() bool { return true }

// errInflated ends a gzip body that inflates past its cap.
var errInflated = errors.New("gzip: the body inflates past the largest request nird reads")

// cappedGzip is a gzip decompressor that fails once it has given limit bytes: Connect reads
// a compressed message up to one byte past its ReadMaxBytes, and then, to say how large it
// was, inflated the rest of it to the end; a body of 4 MiB inflating a thousandfold
// took seconds of CPU before it was refused.
type cappedGzip struct {
	zr    gzip.Reader
	limit int64
	read  int64
}

func (g *cappedGzip) Read(p []byte) (int, error) {
	if g.read >= g.limit {
		return 0, errInflated
	}
	if left := g.limit - g.read; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := g.zr.Read(p)
	g.read += int64(n)
	return n, err
}

func (g *cappedGzip) Reset(r io.Reader) error {
	g.read = 0
	return g.zr.Reset(r)
}

func (g *cappedGzip) Close() error { return g.zr.Close() }
