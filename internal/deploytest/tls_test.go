package deploytest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// writeCerts makes a CA and a server certificate for 127.0.0.1 in dir, as the PEM files the
// TLS example of single.conf names.
func writeCerts(tb testing.TB, dir string) (ca, cert, key string) {
	tb.Helper()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatal(err)
		}
		return path
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nir test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		tb.Fatal(err)
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}

// uncommentTLS returns conf with its first commented "# tls {" block switched on.
func uncommentTLS(tb testing.TB, conf string) string {
	tb.Helper()
	lines := strings.Split(conf, "\n")
	in, done := false, false
	for i, l := range lines {
		switch {
		case !done && !in && strings.TrimSpace(l) == "# tls {":
			in = true
		case in && strings.TrimSpace(l) == "# }":
			in, done = false, true
		case !in:
			continue
		}
		lines[i] = strings.Replace(l, "# ", "", 1)
	}
	if !done {
		tb.Fatal("no commented tls block found")
	}
	return strings.Join(lines, "\n")
}

// TestSingle_TLS switches on the commented TLS example of single.conf, with certificates made
// for the test at the paths it names, and proves that the example is valid: a client that
// trusts the CA connects, a plain-text client is refused.
func TestSingle_TLS(t *testing.T) {
	creds := SetCredentials(t)
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	raw, err := os.ReadFile(filepath.Join(Dir(), "single.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := uncommentTLS(t, string(raw))
	conf = strings.NewReplacer(
		"/etc/nats/tls/server.pem", cert,
		"/etc/nats/tls/server-key.pem", key,
		"/etc/nats/tls/ca.pem", ca,
	).Replace(conf)
	accounts, err := os.ReadFile(filepath.Join(Dir(), "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"single.conf": conf, "accounts.conf": string(accounts)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options(t, filepath.Join(dir, "single.conf"))
	if opts.TLSConfig == nil {
		t.Fatal("TLS block not in effect")
	}
	s := RunServer(t, opts)
	url := strings.Replace(s.ClientURL(), "nats://", "tls://", 1)

	nc, err := nats.Connect(url, nats.UserInfo("nird", creds.Nird), nats.RootCAs(ca))
	if err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("connection is not TLS")
	}
	nc.Close()

	// The server tells every client, before anything else, that TLS is required.
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	info, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("INFO = %q, %v; want tls_required", info, err)
	}
	if nc, err := nats.Connect(url, nats.UserInfo("nird", creds.Nird)); err == nil {
		nc.Close()
		t.Fatal("client that does not trust the CA connected")
	}
}
