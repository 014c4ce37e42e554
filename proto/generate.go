// Package proto holds nir's protobuf schemas; the generated Go lives in proto/nir/v1.
//
// Regenerate after editing a .proto file (buf runs the plugins pinned in go.mod):
//
//	go generate ./proto/...
package proto

//go:generate go run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate --template ../buf.gen.yaml --output .. ..
