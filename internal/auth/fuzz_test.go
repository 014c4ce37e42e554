package auth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParseEntries feeds arbitrary token files to the parser: it must never panic, an
// accepted file must validate and survive a JSON round trip, and a refused one must say so
// with ErrInvalidConfig.
func FuzzParseEntries(f *testing.F) {
	h := HashToken("t")
	f.Add([]byte(`[{"name":"oslo","role":"kommune","kommune":"0301","token_sha256":"` + h + `"}]`))
	f.Add([]byte(`[{"name":"ssb","role":"analyst","token_sha256":"` + h + `"},{"name":"ssb","role":"analyst","token_sha256":"` + h + `"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"tokens":[]}`))
	f.Add([]byte(`[{"name":"x","role":"system","kommune":"","system":"ø","token_sha256":"` + strings.ToUpper(h) + `"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseEntries(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not match ErrInvalidConfig", err)
			}
			return
		}
		if err := Validate(entries); err != nil {
			t.Fatalf("accepted entries do not validate: %v", err)
		}
		again, err := json.Marshal(entries)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseEntries(again)
		if err != nil || len(back) != len(entries) {
			t.Fatalf("round trip: %v, %d entries, want %d", err, len(back), len(entries))
		}
		for i := range back {
			if back[i] != entries[i] {
				t.Fatalf("round trip changed entry %d: %+v → %+v", i, entries[i], back[i])
			}
		}
		if _, err := New(entries); err != nil {
			t.Fatalf("New(accepted entries): %v", err)
		}
	})
}

// FuzzBearerToken checks that header parsing never panics and never returns a token with
// surrounding space or an empty token without an error.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer nir_abc", "bearer  x ", "Basic x", "", "Bearer", "Bearer \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, err := BearerToken(header)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error %v does not match ErrUnauthenticated", err)
			}
			return
		}
		if token == "" || token != strings.TrimSpace(token) {
			t.Fatalf("BearerToken(%q) = %q", header, token)
		}
	})
}
