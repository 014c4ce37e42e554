// Package natsauth holds who may do what on the register's NATS servers, and the
// credentials nird makes for the TCP users of its embedded server.
//
// The permission model is the one of deploy/nats/accounts.conf (internal/deploytest checks
// that both agree):
//
//   - nird's event store: publishes events and manages the stream, deletes and purges
//     denied (eventstore.StorePermissions); replies to it come to eventstore.InboxPrefix.
//   - nird's NATS ingress: receives requests on nir.cmd.append.* and answers under _INBOX.
//     only (natsingress.Permissions).
//   - reader: the nats CLI and other operators' tools, read-only ([ReaderPermissions]), in
//     an account of its own that reaches the register's only through [ReaderImports]
//     (accounts.go says why).
//   - one user per case system, alone in an account of its own ([CaseSystemAccount]) that
//     imports its own request subject nir.cmd.append.<name> from the register's account
//     and nothing else, with limits ([CaseSystemMaxConnections], …): requests on that
//     subject, replies on its own inbox _INBOX.<name> and nothing else
//     ([CaseSystemPermissions]). The server delivers the ingress's answer back into the
//     requester's account alone, so one case system cannot have its answers sent to
//     another's inbox; nird serves each case system on a connection of its own
//     (natsingress.Ingress.AddCaseSystem), so that one case system's flood has only its
//     own connection cut as a slow consumer.
//
// On the embedded server nird's own two users have keys that exist only in nird's memory
// and connect in-process only. The TCP users (reader and the case systems) get an nkey
// each, made on first use and kept in a directory of nird's data (<data>/nats, mode 0700):
// <name>.nk holds the seed (mode 0600) and <name>.json a context for the nats CLI
// (`nats --context <data>/nats/reader.json stream info NIR_EVENTS`), rewritten at every
// start with the listener's URL. Deleting <name>.nk and restarting nird gives the user a
// new key; a case system left out of the list can no longer connect.
package natsauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/natsingress"
	"github.com/introreg/nir/smallfile"
)

// Reader is the read-only user's name.
const Reader = "reader"

// reserved are names a case system may not take: the other users' (nird and ingress are
// the users of deploy/nats/accounts.conf).
var reserved = []string{Reader, "nird", "ingress"}

// CheckCaseSystem reports why name cannot be a case system's NATS user, or nil.
func CheckCaseSystem(name string) error {
	if err := auth.CheckNATSUser(name); err != nil {
		return err
	}
	if slices.Contains(reserved, name) {
		return fmt.Errorf("case system %q: the name is taken by another NATS user", name)
	}
	return nil
}

// InboxPrefix is the inbox prefix of user name (nats.CustomInboxPrefix): its replies
// come under it, and it may subscribe to nothing else of the kind.
func InboxPrefix(name string) string { return natsingress.Inbox(name) }

// ReaderPermissions are the read-only user's, in the readers' account (ReaderImports):
// stream and consumer info, message gets (direct too), ordered consumers (pull consumers,
// created through nird), live events, and the micro service's discovery. It cannot
// publish events or commands, update, delete or purge. Events hold national ids, sealed:
// this user is for operators, not analysts. It reads the persons' data keys as stored,
// wrapped with the master key (nirctl backup copies them), and can neither write nor
// destroy one (DOMAIN.md Product decisions 15). The account alone would keep it from
// anything but the imports; the permissions say the same once more.
func ReaderPermissions() *server.Permissions {
	var allow []string
	for _, im := range ReaderImports() {
		if !im.Stream {
			allow = append(allow, im.Subject)
		}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: allow},
		Subscribe: &server.SubjectPermission{Allow: []string{InboxPrefix(Reader) + ".>", eventstore.EventSubjects}},
	}
}

// CaseSystemPermissions are case system name's: requests on its own request subject
// (natsingress.RequestSubject) and their replies on its own inbox. It cannot see events,
// the JetStream API, other case systems' requests or replies, or nird's inbox, and cannot
// send a request on another case system's subject.
func CaseSystemPermissions(name string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{natsingress.RequestSubject(name)}},
		Subscribe: &server.SubjectPermission{Allow: []string{InboxPrefix(name) + ".>"}},
	}
}

// User is a TCP user of the embedded server with its key files.
type User struct {
	Name string
	// Seed is the file holding the nkey seed; Context the nats CLI context file.
	Seed, Context string
	// Server is the user as the embedded server knows it: public key and permissions.
	Server *server.NkeyUser
}

// LoadOrCreate makes dir (mode 0700) and returns the reader and the named case systems,
// with each one's key read from <dir>/<name>.nk or made and stored there (mode 0600).
// A seed file readable by others is refused, as is a bad name.
func LoadOrCreate(dir string, caseSystems []string) ([]User, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	names := []string{Reader}
	for _, n := range caseSystems {
		if err := CheckCaseSystem(n); err != nil {
			return nil, err
		}
		if slices.Contains(names, n) {
			return nil, fmt.Errorf("case system %q: named twice", n)
		}
		names = append(names, n)
	}
	users := make([]User, 0, len(names))
	for _, n := range names {
		perms := CaseSystemPermissions(n)
		if n == Reader {
			perms = ReaderPermissions()
		}
		seed := filepath.Join(dir, n+".nk")
		pub, err := loadOrCreateSeed(seed)
		if err != nil {
			return nil, err
		}
		users = append(users, User{Name: n, Seed: seed, Context: filepath.Join(dir, n+".json"),
			Server: &server.NkeyUser{Nkey: pub, Permissions: perms, AllowedConnectionTypes: map[string]struct{}{"STANDARD": {}}}})
	}
	return users, nil
}

// loadOrCreateSeed returns the public key of the user seed in file, making the file if
// there is none. The file is whole or absent, and never replaced (smallfile.WriteNew): a
// start that finds it made meanwhile by another reads that one.
func loadOrCreateSeed(file string) (string, error) {
	// A FIFO or a device in its place is refused, not waited on.
	// The mode checked is the file's read (fi), not the path's at some later moment.
	b, fi, err := smallfile.ReadStat(file, 64<<10)
	if errors.Is(err, os.ErrNotExist) {
		pub, cerr := createSeed(file)
		if !errors.Is(cerr, os.ErrExist) {
			return pub, cerr
		}
		b, fi, err = smallfile.ReadStat(file, 64<<10)
	}
	if err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	if err := checkPrivate(file, fi); err != nil {
		return "", err
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return "", fmt.Errorf("nats credentials: %s: not an nkey seed (delete it and restart nird to make a new key)", file)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("nats credentials: %s: not a user nkey seed", file)
	}
	return pub, nil
}

// createSeed makes a new user seed in file, which must not exist, and returns its public key.
func createSeed(file string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	if err := smallfile.WriteNew(file, append(seed, '\n')); err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	return kp.PublicKey()
}

// checkPrivate refuses a key file that others than its owner may read or write: fi is the
// file as read, never looked up again by its path.
func checkPrivate(file string, fi os.FileInfo) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("nats credentials: %s has mode %04o; it holds a secret key, make it 0600 (chmod 600 %s)", file, fi.Mode().Perm(), file)
	}
	return nil
}

// writeFile writes data to file with mode 0600, atomically.
func writeFile(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("nats credentials: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	return nil
}

// Context is the part of a nats CLI context file (natscontext) that nird writes and
// ReadContext reads.
type Context struct {
	Description string `json:"description"`
	URL         string `json:"url"`
	// NKey is the path of the seed file.
	NKey string `json:"nkey,omitempty"`
	// User and Password, for a context an operator wrote for deploy/'s servers.
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// Creds is a credentials file (JWT); CA a CA certificate for TLS.
	Creds       string `json:"creds,omitempty"`
	CA          string `json:"ca,omitempty"`
	InboxPrefix string `json:"inbox_prefix,omitempty"`
}

// WriteContexts writes each user's nats CLI context file (mode 0600): url, the absolute
// path of its seed and its inbox prefix.
func WriteContexts(users []User, url string) error {
	for _, u := range users {
		seed, err := filepath.Abs(u.Seed)
		if err != nil {
			return fmt.Errorf("nats credentials: %w", err)
		}
		desc := "nird's embedded NATS server as case system " + u.Name + " (requests on " + natsingress.RequestSubject(u.Name) + " only)"
		if u.Name == Reader {
			desc = "nird's embedded NATS server, read-only (events hold national ids)"
		}
		b, err := json.MarshalIndent(Context{Description: desc, URL: url, NKey: seed, InboxPrefix: InboxPrefix(u.Name)}, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFile(u.Context, append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// RemoveContexts removes the context files of dir (nird has no TCP listener, so they
// would point at a port someone else may hold); the seeds stay.
func RemoveContexts(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("nats credentials: %w", err)
		}
	}
	return nil
}

// ReadContext reads a nats CLI context file and returns its URL and the client options
// it names (credentials, CA, inbox prefix), for nirctl and tests.
func ReadContext(file string) (string, []nats.Option, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("nats context: %w", err)
	}
	var c Context
	if err := json.Unmarshal(b, &c); err != nil {
		return "", nil, fmt.Errorf("nats context %s: %w", file, err)
	}
	if c.URL == "" {
		return "", nil, fmt.Errorf("nats context %s: no url", file)
	}
	var opts []nats.Option
	switch {
	case c.NKey != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return "", nil, fmt.Errorf("nats context %s: nkey: %w", file, err)
		}
		opts = append(opts, opt)
	case c.Creds != "":
		opts = append(opts, nats.UserCredentials(c.Creds))
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	return c.URL, opts, nil
}
