package api

// How a request holding fields the schema does not define is refused with a FieldViolation
// naming where. Unmarshal finds it (unknown.go for binary, jsonUnknownField for JSON) and
// returns *UnknownFieldsError; the NATS ingress answers with it. A Connect codec cannot: Connect
// wraps a codec's error in an InvalidArgument of its own, without the error's details, and
// runs no interceptor on a request it could not decode. So nird's codecs (Decoding) empty
// the request and mark it with the field instead (markUnknown), and Decoding's interceptor
// (refuseMarked), the first to look at a decoded request after the guard's, refuses it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// unknownFieldsReason is the FieldViolation's reason for a message holding unknown fields.
const unknownFieldsReason = "holds fields this nird's schema does not define; nird stores and answers only what it has validated (drop the fields, or upgrade nird)"

// UnknownFieldsError is returned by Unmarshal when a request holds fields the schema does
// not define. Field is where, below the request ("registrations[0].event"), or "request";
// it is built from the schema's names and list indices only, never from the request's
// bytes (a JSON key may be a national id).
type UnknownFieldsError struct {
	Field string
}

func (e *UnknownFieldsError) Error() string { return e.Field + ": " + unknownFieldsReason }

// ConnectError is the error a caller is answered with: InvalidArgument with a
// nir.v1.FieldViolation naming the field, as every invalid field of a request.
func (e *UnknownFieldsError) ConnectError() *connect.Error {
	return fieldError(connect.CodeInvalidArgument, e.Field, unknownFieldsReason)
}

// markerNumber is the field number of the mark a codec leaves on a refused request: the
// largest valid one. A client's own field of that number is unknown, so a codec refuses it
// (and marks the request afresh) before any interceptor sees it.
const markerNumber protowire.Number = protowire.MaxValidNumber

// markUnknown turns err, if it is an *UnknownFieldsError, into a mark on m for refuseMarked:
// m emptied (nothing of the request reaches an interceptor or a handler), holding only the
// field's path as an unknown field of number markerNumber. Other errors are returned.
func markUnknown(m proto.Message, err error) error {
	var uf *UnknownFieldsError
	if !errors.As(err, &uf) {
		return err
	}
	proto.Reset(m)
	m.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, markerNumber, protowire.BytesType), uf.Field))
	return nil
}

// marked returns the refusal of a request markUnknown marked, or nil.
func marked(m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil
	}
	b := pm.ProtoReflect().GetUnknown()
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != markerNumber || typ != protowire.BytesType {
		return nil
	}
	field, m2 := protowire.ConsumeString(b[n:])
	if m2 != len(b)-n {
		return nil
	}
	return (&UnknownFieldsError{Field: field}).ConnectError()
}

// refuseMarked is Decoding's interceptor: it answers a request its codecs marked with the
// refusal, for unary calls and each message a streaming handler receives.
type refuseMarked struct{}

func (refuseMarked) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := marked(req.Any()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (refuseMarked) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (refuseMarked) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, markedConn{conn})
	}
}

// markedConn refuses a received message its codec marked.
type markedConn struct{ connect.StreamingHandlerConn }

func (c markedConn) Receive(m any) error {
	if err := c.StreamingHandlerConn.Receive(m); err != nil {
		return err
	}
	return marked(m)
}

// jsonUnknownField returns where the JSON request b, of type md, holds a key the schema
// does not define, as unknownField names it, and whether it does. It is asked only once
// protojson refused b: protojson says which key, not where, and quotes it.
func jsonUnknownField(b []byte, md protoreflect.MessageDescriptor) (string, bool) {
	p, found, err := jsonMessage(json.NewDecoder(bytes.NewReader(b)), md)
	if err != nil || !found {
		return "", false
	}
	return fieldPath(p), true
}

// jsonMessage reads a JSON value for a message of type md from dec and returns the path
// below it to the first object holding a key the schema does not define, if found. It
// takes a key as protojson does, by its JSON name or its name in the schema.
func jsonMessage(dec *json.Decoder, md protoreflect.MessageDescriptor) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return "", false, skipRest(dec, tok, err) // null, or protojson refuses it
	}
	fields := md.Fields()
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false, err
		}
		key, _ := tok.(string)
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil {
			return "", true, nil
		}
		if p, found, err := jsonField(dec, fd); err != nil || found {
			return p, found, err
		}
	}
	_, err = dec.Token() // '}'
	return "", false, err
}

// jsonField reads the JSON value of the field fd from dec, as jsonMessage reads a message.
// A well-known type's value (a Timestamp is a string) and a map's are not looked into.
func jsonField(dec *json.Decoder, fd protoreflect.FieldDescriptor) (string, bool, error) {
	md := fd.Message()
	if md == nil || fd.IsMap() || strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		tok, err := dec.Token()
		return "", false, skipRest(dec, tok, err)
	}
	name := "." + string(fd.Name())
	if !fd.IsList() {
		p, found, err := jsonMessage(dec, md)
		return name + p, found, err
	}
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return "", false, skipRest(dec, tok, err)
	}
	for i := 0; dec.More(); i++ {
		if p, found, err := jsonMessage(dec, md); err != nil || found {
			return fmt.Sprintf("%s[%d]%s", name, i, p), found, err
		}
	}
	_, err = dec.Token() // ']'
	return "", false, err
}

// skipRest reads the rest of the JSON value tok began (read with err) from dec.
func skipRest(dec *json.Decoder, tok json.Token, err error) error {
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || (d != '{' && d != '[') {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}
