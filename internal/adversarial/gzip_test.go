package adversarial

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/nirdtest"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// gzipBomb returns the gzip stream of n zero bytes with its trailer's CRC-32 made wrong:
// gzip checks the trailer only once it has inflated the whole stream, so a server that
// answers "invalid checksum" inflated all n bytes.
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	b[len(b)-8] ^= 0xff
	return b
}

// postGzip POSTs the gzip body to nird's procedure with the Connect unary protocol (binary
// protobuf), with token when not empty, and returns the Connect error's code and message.
func postGzip(t *testing.T, n *nirdtest.Nird, procedure, token string, body []byte) (code, msg string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.URL()+procedure, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Content-Encoding", "gzip")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e struct{ Code, Message string }
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("HTTP %d %q: not a Connect error", res.StatusCode, b)
	}
	return e.Code, e.Message
}

// TestHTTP_GzipBodies: what a compressed request makes nird do before it refuses it. A
// gzip body that inflates past what nird reads is refused once it has inflated that far:
// the public health check's (1 KiB read, no token needed, no rate limit) of 1 KiB
// inflating to 960 KiB, and a case system's append of 64 KiB (the free part of a body)
// inflating to 64 MiB. Before, Connect inflated each to its end to say how large it was.
// And an append that inflates to 4 MiB of empty registrations is refused before it is
// decoded (it decoded to some 300 MiB).
func TestHTTP_GzipBodies(t *testing.T) {
	n, toks := edgeStart(t)
	health := gzipBomb(t, 960<<10)
	if len(health) > 1<<10 {
		t.Fatalf("the health check's bomb is %d bytes, more than nird reads of one", len(health))
	}
	for _, c := range []struct {
		name, procedure, token string
		body                   []byte
	}{
		{"HealthCheckWithoutToken", "/grpc.health.v1.Health/Check", "", health},
		{"AppendOfACaseSystem", nirv1connect.RegistrationServiceAppendProcedure, toks.oslo, gzipBomb(t, 64<<20)},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := postGzip(t, n, c.procedure, c.token, c.body)
			if code != "resource_exhausted" || !strings.Contains(msg, "larger than configured max") {
				t.Errorf("answer %s %q, want resource_exhausted saying the message is too large", code, msg)
			}
			if strings.Contains(msg, "checksum") {
				t.Errorf("answer %q: nird inflated the whole body, to its trailer", msg)
			}
		})
	}
	t.Run("ManyEmptyRegistrations", func(t *testing.T) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(bytes.Repeat([]byte{0x0a, 0x00}, 2<<20-512)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		code, msg := postGzip(t, n, nirv1connect.RegistrationServiceAppendProcedure, toks.oslo, buf.Bytes())
		if code != "invalid_argument" || !strings.Contains(msg, "than any valid request") {
			t.Errorf("answer %s %q, want invalid_argument saying it holds more than any valid request", code, msg)
		}
	})
}
