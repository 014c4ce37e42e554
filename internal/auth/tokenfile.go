package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/smallfile"
)

// TokenPrefix starts every token that [GenerateToken] makes, so that secret scanners and
// humans can recognise a leaked nird token.
const TokenPrefix = "nir_"

// tokenBytes is the token's entropy: 32 random bytes (256 bits).
const tokenBytes = 32

// Entry is one principal in the token file. The file is a JSON array of entries:
//
//	[
//	  {"name": "oslo-fagsystem", "role": "kommune", "kommune": "0301",
//	   "system": "Visma Flyt", "token_sha256": "3f0c…"},
//	  {"name": "regelmotor", "role": "system", "token_sha256": "…"}
//	]
type Entry struct {
	// Name identifies the principal; unique in the file. Letters, digits, '.', '_' and '-'.
	Name string `json:"name"`
	// Role is "kommune", "analyst", "operator" or "system".
	Role Role `json:"role"`
	// Kommune is the kommunenummer (4 digits) of a kommune valid today in the kommune table
	// (rules.LookupKommune); required for role kommune, forbidden otherwise.
	Kommune string `json:"kommune,omitempty"`
	// System optionally names the case system (fagsystem) that uses the token.
	System string `json:"system,omitempty"`
	// NATSUser optionally binds the token to one case system's NATS user (a name of
	// nird --nats-case-systems): the token is then accepted only in requests that user
	// sends on nir.cmd.append.<user>, and refused over HTTP and in the console
	// ([Principal.NATSUser]). Only for roles kommune and system, the roles that append.
	NATSUser string `json:"nats_user,omitempty"`
	// TokenSHA256 is the lowercase hex SHA-256 of the token; unique in the file.
	TokenSHA256 string `json:"token_sha256"`
}

// Principal returns the principal the entry authenticates as.
func (e Entry) Principal() Principal {
	return Principal{Name: e.Name, Role: e.Role, Kommune: e.Kommune, System: e.System, NATSUser: e.NATSUser}
}

// HashToken returns the lowercase hex SHA-256 of token, the form stored in the token file.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// GenerateToken makes a new random token for p and the token file entry that holds its hash.
// The token is shown to the operator once (`nirctl token create`) and never stored.
func GenerateToken(p Principal) (token string, entry Entry, err error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Entry{}, fmt.Errorf("generate token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	entry = Entry{Name: p.Name, Role: p.Role, Kommune: p.Kommune, System: p.System, NATSUser: p.NATSUser, TokenSHA256: HashToken(token)}
	return token, entry, nil
}

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	kommuneRe = regexp.MustCompile(`^[0-9]{4}$`)
	hashRe    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	natsRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
)

// CheckNATSUser reports why name cannot be a case system's NATS user, or nil: it becomes a
// subject token and a file name (internal/natsauth), so 1 to 32 lower-case letters, digits
// or '-', starting with a letter or digit.
func CheckNATSUser(name string) error {
	if !natsRe.MatchString(name) {
		return fmt.Errorf("case system %q: use 1 to 32 lower-case letters, digits or '-', starting with a letter or digit", name)
	}
	return nil
}

// Validate checks the entries: each field's form, that a kommune principal's kommunenummer is
// a kommune today (in Europe/Oslo), and that names and token hashes are unique. The returned
// error joins one [*ConfigError] per problem, each naming the entry and the field; it matches
// [ErrInvalidConfig].
func Validate(entries []Entry) error {
	return validate(entries, today())
}

// today is the register's calendar date.
func today() rules.Date { return rules.Today(time.Now()) }

// emptyTokenHash is HashToken(""), which no entry may hold.
var emptyTokenHash = HashToken("")

func validate(entries []Entry, today rules.Date) error {
	var errs []error
	bad := func(i int, e Entry, field, format string, args ...any) {
		errs = append(errs, &ConfigError{Index: i, Name: e.Name, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	names := make(map[string]int, len(entries))
	hashes := make(map[string]int, len(entries))
	for i, e := range entries {
		switch {
		case e.Name == "":
			bad(i, e, "name", "is required")
		case !nameRe.MatchString(e.Name):
			bad(i, e, "name", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
		default:
			if j, dup := names[e.Name]; dup {
				bad(i, e, "name", "duplicates entry %d", j)
			} else {
				names[e.Name] = i
			}
		}
		switch {
		case e.Role == "":
			bad(i, e, "role", "is required (one of %v)", Roles)
		case !e.Role.Valid():
			bad(i, e, "role", "unknown role %q (one of %v)", string(e.Role), Roles)
		}
		switch {
		case e.Role == RoleKommune && e.Kommune == "":
			bad(i, e, "kommune", "is required for role kommune")
		case e.Role == RoleKommune && !kommuneRe.MatchString(e.Kommune):
			bad(i, e, "kommune", "must be a kommunenummer of 4 digits, e.g. \"0301\"")
		case e.Role == RoleKommune:
			// A number that is no kommune today (9999, or one merged away) would
			// authenticate a principal that can never be a kommune's case system.
			if _, err := rules.LookupKommune(e.Kommune, today); err != nil {
				bad(i, e, "kommune", "%v", err)
			}
		case e.Role != RoleKommune && e.Kommune != "":
			bad(i, e, "kommune", "is only allowed for role kommune")
		}
		switch {
		case e.NATSUser == "":
		case e.Role != RoleKommune && e.Role != RoleSystem:
			bad(i, e, "nats_user", "is only allowed for roles kommune and system, the roles that append")
		case CheckNATSUser(e.NATSUser) != nil:
			bad(i, e, "nats_user", "must be a case system's NATS user: 1 to 32 lower-case letters, digits or '-', starting with a letter or digit")
		}
		switch {
		case e.TokenSHA256 == "":
			bad(i, e, "token_sha256", "is required")
		case !hashRe.MatchString(e.TokenSHA256):
			bad(i, e, "token_sha256", "must be 64 lowercase hex digits (the SHA-256 of the token, not the token)")
		case e.TokenSHA256 == emptyTokenHash:
			// The hash of no token at all: only the bearer parser's refusal of an empty token
			// kept it from authenticating every request that sends none.
			bad(i, e, "token_sha256", "is the SHA-256 of an empty token")
		default:
			if j, dup := hashes[e.TokenSHA256]; dup {
				bad(i, e, "token_sha256", "duplicates entry %d", j)
			} else {
				hashes[e.TokenSHA256] = i
			}
		}
	}
	return errors.Join(errs...)
}

// ParseEntries decodes and validates a token file's content. Unknown fields are refused, so
// that a misspelt field name is reported rather than ignored.
func ParseEntries(data []byte) ([]Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var entries []Entry
	if err := dec.Decode(&entries); err != nil {
		return nil, &ConfigError{Index: -1, Msg: "not a JSON array of entries: " + err.Error()}
	}
	if dec.More() {
		return nil, &ConfigError{Index: -1, Msg: "trailing data after the JSON array"}
	}
	if err := Validate(entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// MaxTokenFileSize is the largest token file ReadEntries reads (an entry takes a few hundred
// bytes): a larger one is damage, not read into memory.
const MaxTokenFileSize = 64 << 20

// ReadEntries reads and validates the token file at path.
func ReadEntries(path string) ([]Entry, error) {
	// A FIFO or a device in its place is refused, not waited on.
	data, err := smallfile.Read(path, MaxTokenFileSize)
	if err != nil {
		return nil, fmt.Errorf("read token file %s: %w", path, err)
	}
	entries, err := ParseEntries(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return entries, nil
}

// WriteEntries validates entries and writes them to path atomically (a temporary file in the
// same directory, synced, then renamed). A new file is readable by its owner only; a replaced
// file keeps its mode, and its owner and group where the process may set them, so that nird
// (reading through its group, for example) can still read it after `nirctl token create`.
func WriteEntries(path string, entries []Entry) error {
	if err := Validate(entries); err != nil {
		return err
	}
	if entries == nil {
		entries = []Entry{}
	}
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return fmt.Errorf("encode token file: %w", err)
	}
	data = append(data, '\n')
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after a successful rename
	if fi, err := os.Stat(path); err == nil {
		if err := f.Chmod(fi.Mode().Perm()); err != nil {
			f.Close()
			return fmt.Errorf("write token file %s: %w", path, err)
		}
		keepOwner(f, fi)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync token file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close token file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace token file %s: %w", path, err)
	}
	return nil
}

// AddToken makes a new token for p, adds its entry to the token file at path (creating the
// file if it does not exist) and returns the token, which is shown once and stored nowhere.
// It refuses a name already in the file. `nirctl token create` is this call; nird picks the
// new entry up on restart or [Authenticator.Reload].
func AddToken(path string, p Principal) (token string, err error) {
	entries, err := ReadEntries(path)
	if errors.Is(err, os.ErrNotExist) {
		entries, err = nil, nil
	}
	if err != nil {
		return "", err
	}
	token, entry, err := GenerateToken(p)
	if err != nil {
		return "", err
	}
	if err := WriteEntries(path, append(entries, entry)); err != nil {
		return "", err
	}
	return token, nil
}

// RemoveToken deletes the entry named name from the token file at path, revoking its token
// once nird reloads the file. It reports whether the entry was there.
func RemoveToken(path, name string) (bool, error) {
	entries, err := ReadEntries(path)
	if err != nil {
		return false, err
	}
	kept := entries[:0]
	for _, e := range entries {
		if e.Name != name {
			kept = append(kept, e)
		}
	}
	if len(kept) == len(entries) {
		return false, nil
	}
	return true, WriteEntries(path, kept)
}
