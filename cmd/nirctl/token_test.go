package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/introreg/nir/internal/auth"
)

func TestToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.json")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"token", "create", "--file", file, "--name", "oslo", "--role", "kommune", "--kommune", "0301"}, &out, &errb)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, errb.String())
	}
	token := strings.TrimSpace(out.String())
	a, err := auth.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(token)
	if err != nil || p.Name != "oslo" || p.Role != auth.RoleKommune || p.Kommune != "0301" {
		t.Fatalf("Authenticate(new token) = %+v, %v", p, err)
	}
	if err := run(context.Background(), []string{"token", "create", "--file", file, "--name", "bad", "--role", "kommune"}, &out, &errb); err == nil {
		t.Errorf("a kommune token without a kommune was created")
	}
	// --nats-user binds the token to a case system's NATS user.
	out.Reset()
	if err := run(context.Background(), []string{"token", "create", "--file", file, "--name", "oslo-nats", "--role", "kommune", "--kommune", "0301", "--nats-user", "oslo-visma"}, &out, &errb); err != nil {
		t.Fatalf("create --nats-user: %v\n%s", err, errb.String())
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(strings.TrimSpace(out.String())); err != nil || p.NATSUser != "oslo-visma" {
		t.Fatalf("Authenticate(bound token) = %+v, %v", p, err)
	}
	if err := run(context.Background(), []string{"token", "create", "--file", file, "--name", "ssb", "--role", "analyst", "--nats-user", "ssb"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "nats_user") {
		t.Errorf("an analyst token bound to a NATS user: %v, want an error naming nats_user", err)
	}
	if err := run(context.Background(), []string{"token", "revoke", "--file", file, "--name", "oslo"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		if _, err := a.Authenticate(token); err == nil {
			t.Errorf("revoked token still authenticates")
		}
	}
}
