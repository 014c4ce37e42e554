package api

import (
	"bytes"
	"encoding/json"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// StrictJSON makes a Connect handler refuse JSON requests that hold fields the schema does
// not define, as the binary path (Unmarshal) and the NATS ingress do. Connect's own JSON
// codec drops them silently, so a client on a newer schema would have its new fields
// ignored without a word: a registration stored without the field it meant, or a query
// answered without the filter it asked for. The error is InvalidArgument with a
// FieldViolation naming where, given by the interceptor (refuseMarked) StrictJSON adds
// after the handler's others. It decodes with Unmarshal, so a request is also counted
// before it is decoded; Decoding holds it with the rest of nird's reading of requests.
func StrictJSON() connect.HandlerOption {
	return connect.WithHandlerOptions(
		connect.WithCodec(strictJSON{name: "json"}),
		connect.WithCodec(strictJSON{name: "json; charset=utf-8"}),
		connect.WithInterceptors(refuseMarked{}),
	)
}

// strictJSON is Connect's protojson codec without DiscardUnknown, decoding with Unmarshal.
type strictJSON struct{ name string }

func (c strictJSON) Name() string { return c.name }

func (c strictJSON) Marshal(m any) ([]byte, error) {
	pm, err := protoMessage(m)
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(pm)
}

func (c strictJSON) Unmarshal(data []byte, m any) error {
	pm, err := protoMessage(m)
	if err != nil {
		return err
	}
	return markUnknown(pm, Unmarshal(data, true, pm))
}

// protoMessage is m as the protobuf message a Connect codec is given.
func protoMessage(m any) (proto.Message, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", m)
	}
	return pm, nil
}

// MarshalStable and IsBinary serve Connect's GET requests, as its own codec does.
func (c strictJSON) MarshalStable(m any) ([]byte, error) {
	data, err := c.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, data); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (c strictJSON) IsBinary() bool { return false }
