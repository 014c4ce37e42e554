package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introreg/nir/rules"
)

func TestHashToken(t *testing.T) {
	t.Parallel()
	// FIPS 180-2 test vector.
	if got, want := HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashToken(abc) = %s, want %s", got, want)
	}
}

func TestGenerateToken(t *testing.T) {
	t.Parallel()
	p := Principal{Name: "oslo-fagsystem", Role: RoleKommune, Kommune: "0301", System: "Visma Flyt"}
	seen := map[string]bool{}
	for range 50 {
		token, e, err := GenerateToken(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(token, TokenPrefix) || len(token) != len(TokenPrefix)+43 {
			t.Fatalf("token %q: want prefix %q and 43 base64url characters", token, TokenPrefix)
		}
		if seen[token] {
			t.Fatalf("token repeated after %d tokens", len(seen))
		}
		seen[token] = true
		if e.TokenSHA256 != HashToken(token) {
			t.Fatalf("entry hash %s is not the token's hash", e.TokenSHA256)
		}
		if strings.Contains(e.TokenSHA256, token) || e.Principal() != p {
			t.Fatalf("entry %+v does not describe %+v", e, p)
		}
		if err := Validate([]Entry{e}); err != nil {
			t.Fatalf("generated entry does not validate: %v", err)
		}
	}
}

func validEntry(name string, role Role, kommune string) Entry {
	return Entry{Name: name, Role: role, Kommune: kommune, TokenSHA256: HashToken("token-of-" + name)}
}

// TestValidate_KommuneOnTheDay: the kommune table decides by the day the file is loaded: a
// number merged away in 2024 was good in 2023, and its successor was not yet.
func TestValidate_KommuneOnTheDay(t *testing.T) {
	t.Parallel()
	in2023 := rules.MustDate(2023, time.June, 1)
	if err := validate([]Entry{validEntry("halden", RoleKommune, "3001")}, in2023); err != nil {
		t.Errorf("3001 Halden in 2023: %v", err)
	}
	if err := validate([]Entry{validEntry("halden", RoleKommune, "3101")}, in2023); err == nil || !strings.Contains(err.Error(), `field "kommune"`) {
		t.Errorf("3101 Halden in 2023 = %v, want refused naming the field", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := validEntry("oslo-fagsystem", RoleKommune, "0301")
	tests := []struct {
		name    string
		entries []Entry
		want    []string // each must appear in the error; nil means valid
	}{
		{"OK", []Entry{good, validEntry("regelmotor", RoleSystem, ""), validEntry("ssb", RoleAnalyst, ""), validEntry("ops", RoleOperator, "")}, nil},
		{"Empty", nil, nil},
		{"NoName", []Entry{{Role: RoleAnalyst, TokenSHA256: good.TokenSHA256}}, []string{`entry 0: field "name": is required`}},
		{"BadName", []Entry{validEntry("oslo fagsystem", RoleKommune, "0301")}, []string{`entry 0 ("oslo fagsystem"): field "name"`}},
		{"DuplicateName", []Entry{good, {Name: good.Name, Role: RoleAnalyst, TokenSHA256: HashToken("x")}}, []string{`entry 1 ("oslo-fagsystem"): field "name": duplicates entry 0`}},
		{"NoRole", []Entry{{Name: "a", TokenSHA256: good.TokenSHA256}}, []string{`field "role": is required`}},
		{"UnknownRole", []Entry{validEntry("a", "admin", "")}, []string{`field "role": unknown role "admin"`}},
		{"PublicIsNoRole", []Entry{validEntry("a", Public, "")}, []string{`field "role": unknown role "public"`}},
		{"KommuneMissing", []Entry{validEntry("a", RoleKommune, "")}, []string{`field "kommune": is required for role kommune`}},
		{"KommuneMalformed", []Entry{validEntry("a", RoleKommune, "301")}, []string{`field "kommune": must be a kommunenummer of 4 digits`}},
		{"KommuneNotInTheTable", []Entry{validEntry("a", RoleKommune, "9999")}, []string{`entry 0 ("a"): field "kommune"`, "9999 is in no period of the kommune table"}},
		{"KommuneMergedAway", []Entry{validEntry("a", RoleKommune, "3001")}, []string{`field "kommune"`, "3001 (Halden)", "3101 Halden"}},
		{"KommuneOnAnalyst", []Entry{validEntry("a", RoleAnalyst, "0301")}, []string{`field "kommune": is only allowed for role kommune`}},
		{"NoHash", []Entry{{Name: "a", Role: RoleOperator}}, []string{`field "token_sha256": is required`}},
		{"UppercaseHash", []Entry{{Name: "a", Role: RoleOperator, TokenSHA256: strings.ToUpper(good.TokenSHA256)}}, []string{`field "token_sha256": must be 64 lowercase hex`}},
		{"PlainTokenInsteadOfHash", []Entry{{Name: "a", Role: RoleOperator, TokenSHA256: "nir_secret"}}, []string{`field "token_sha256"`}},
		{"DuplicateHash", []Entry{good, {Name: "b", Role: RoleAnalyst, TokenSHA256: good.TokenSHA256}}, []string{`entry 1 ("b"): field "token_sha256": duplicates entry 0`}},
		// Found on 2026-12-07 (mutation testing): the hash of an empty token was accepted,
		// and only the bearer parser kept an absent token from matching it.
		{"EmptyTokenHash", []Entry{{Name: "b", Role: RoleAnalyst, TokenSHA256: HashToken("")}}, []string{`entry 0 ("b"): field "token_sha256": is the SHA-256 of an empty token`}},
		{"NATSUser", []Entry{withNATSUser(good, "oslo-visma"), withNATSUser(validEntry("regelmotor", RoleSystem, ""), "regelmotor-1")}, nil},
		{"NATSUserOnAnalyst", []Entry{withNATSUser(validEntry("ssb", RoleAnalyst, ""), "ssb")}, []string{`entry 0 ("ssb"): field "nats_user": is only allowed for roles kommune and system`}},
		{"NATSUserMalformed", []Entry{withNATSUser(good, "Oslo.Visma")}, []string{`field "nats_user": must be a case system's NATS user`}},
		{"NATSUserWildcard", []Entry{withNATSUser(good, "*")}, []string{`field "nats_user"`}},
		{"AllProblemsReported", []Entry{{Name: "x y", Role: "boss", Kommune: "1", TokenSHA256: "zz"}}, []string{`field "name"`, `field "role"`, `field "kommune"`, `field "token_sha256"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(tt.entries)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want a *ConfigError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseEntries(t *testing.T) {
	t.Parallel()
	h := HashToken("t")
	tests := []struct {
		name string
		data string
		want string // substring of the error; "" means OK
	}{
		{"OK", `[{"name":"oslo","role":"kommune","kommune":"0301","system":"Visma Flyt","token_sha256":"` + h + `"}]`, ""},
		{"EmptyArray", `[]`, ""},
		{"UnknownField", `[{"name":"oslo","role":"kommune","kommune":"0301","token":"nir_secret","token_sha256":"` + h + `"}]`, `unknown field "token"`},
		{"NotArray", `{"name":"oslo"}`, "not a JSON array"},
		{"Trailing", `[] []`, "trailing data"},
		{"Invalid", `[{"name":"oslo","role":"kommune","token_sha256":"` + h + `"}]`, `field "kommune"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entries, err := ParseEntries([]byte(tt.data))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.name == "OK" && (len(entries) != 1 || entries[0].Principal() != (Principal{Name: "oslo", Role: RoleKommune, Kommune: "0301", System: "Visma Flyt"})) {
					t.Fatalf("entries = %+v", entries)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseEntries = %v, want ErrInvalidConfig containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "nir_secret") {
				t.Fatalf("error %q repeats a token", err)
			}
		})
	}
}

func TestWriteEntries(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	_, e1, _ := GenerateToken(Principal{Name: "oslo", Role: RoleKommune, Kommune: "0301"})
	_, e2, _ := GenerateToken(Principal{Name: "regelmotor", Role: RoleSystem})
	if err := WriteEntries(path, []Entry{e1, e2}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("token file mode %v, want owner-only", fi.Mode().Perm())
	}
	got, err := ReadEntries(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != e1 || got[1] != e2 {
		t.Fatalf("read back %+v, want %+v", got, []Entry{e1, e2})
	}
	if err := WriteEntries(path, []Entry{e1, e1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("WriteEntries(duplicates) = %v, want ErrInvalidConfig", err)
	}
	if got, err := ReadEntries(path); err != nil || len(got) != 2 {
		t.Fatalf("a refused write changed the file: %v, %d entries", err, len(got))
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

func TestAddToken_RemoveToken(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	oslo, err := AddToken(path, Principal{Name: "oslo", Role: RoleKommune, Kommune: "0301"})
	if err != nil {
		t.Fatalf("AddToken to a new file: %v", err)
	}
	ssb, err := AddToken(path, Principal{Name: "ssb", Role: RoleAnalyst})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AddToken(path, Principal{Name: "ssb", Role: RoleAnalyst}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), `field "name": duplicates entry 1`) {
		t.Fatalf("AddToken(duplicate name) = %v", err)
	}
	if _, err := AddToken(path, Principal{Name: "bad", Role: RoleKommune}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("AddToken(kommune without number) = %v", err)
	}
	// A replaced file keeps its mode (nird reads it through its group).
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := AddToken(path, Principal{Name: "drift", Role: RoleOperator}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode after AddToken = %v, %v; want 0640", fi.Mode().Perm(), err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), oslo) || strings.Contains(string(data), ssb) {
		t.Fatal("the token file holds a token")
	}
	a, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]string{oslo: "oslo", ssb: "ssb"} {
		if p, err := a.Authenticate(token); err != nil || p.Name != want {
			t.Fatalf("Authenticate = %+v, %v; want %s", p, err, want)
		}
	}

	if ok, err := RemoveToken(path, "oslo"); !ok || err != nil {
		t.Fatalf("RemoveToken(oslo) = %v, %v", ok, err)
	}
	if ok, err := RemoveToken(path, "oslo"); ok || err != nil {
		t.Fatalf("RemoveToken(oslo) again = %v, %v", ok, err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(oslo); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("removed token still works: %v", err)
	}
	if p, err := a.Authenticate(ssb); err != nil || p.Name != "ssb" {
		t.Fatalf("kept token: %+v, %v", p, err)
	}
	if _, err := RemoveToken(filepath.Join(t.TempDir(), "missing.json"), "x"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("RemoveToken(missing file) = %v", err)
	}
}

func withNATSUser(e Entry, user string) Entry {
	e.NATSUser = user
	return e
}
