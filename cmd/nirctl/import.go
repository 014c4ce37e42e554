package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/introreg/nir/internal/regfile"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// nirctl import loads files of registrations into the register, resumably.
//
// Idempotency: the event id is the register's idempotency key. A line without an id gets one
// derived from the file's content (SHA-256) and the line number, so the same file yields the
// same ids on every run and a re-sent line is answered "already stored" instead of stored
// twice. The state file (--state) records, per file, the content hash and the last line of
// the last acknowledged batch; a re-run skips what was acknowledged and re-sends the rest,
// including the batch that was in flight when the run was interrupted.
//
// A file whose content changed since the state was written is refused: its derived ids would
// differ, and lines stored under the old ids would be stored again.

func init() {
	register("import", "import registration files (protojson lines or CSV) in batches, resumable with --state", runImport)
}

const importUsage = `usage: nirctl import [--state FILE] [--batch N] [--format auto|jsonl|csv] [--progress] FILE ...

Each FILE ("-" for standard input; a file or a pipe of at most 1 GiB, read whole first) holds registrations, sent in batches (each batch is atomic) in file order,
once the whole file has been read and its format checked (a line it refuses stops the import before anything is sent):

  jsonl  one nir.v1.Registration in protojson per line (as for nirctl append); blank lines
         and lines starting with '#' are skipped.
  csv    a header row, then one registration per row (see below). Chosen for files ending
         in .csv when --format is auto.

An event without an id gets a deterministic one, derived from the file's SHA-256 and the line
number, so importing the same file again stores nothing twice: re-sent events are counted as
"already stored". With --state, progress is kept in FILE (the last acknowledged line of each
input, known by a digest of its absolute path: the file holds no name), and a run after an
interruption skips the acknowledged batches. An input that changed since its import began
is refused; put corrected or further lines in a new file.

` + regfile.CSVColumnsHelp

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	statePath := fs.String("state", "", "progress state file; a re-run with the same file resumes after the last acknowledged batch")
	batch := fs.Int("batch", 100, "registrations per request (each request is atomic), at most 1000")
	format := fs.String("format", "auto", "input format: auto (by extension), jsonl or csv")
	progress := fs.Bool("progress", false, "show a progress bar on stderr even when it is not a terminal")
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return badArgs(fs, err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	if *batch < 1 || *batch > 1000 {
		return fmt.Errorf("--batch: %d is not between 1 and 1000", *batch)
	}
	switch *format {
	case "auto", "jsonl", "csv":
	default:
		return fmt.Errorf("--format: %q is not auto, jsonl or csv", *format)
	}

	st, err := loadImportState(*statePath)
	if err != nil {
		return err
	}
	im := &importer{
		client:   registrationClient(ctx),
		state:    st,
		path:     *statePath,
		batch:    *batch,
		maxInput: maxImportInput,
		stdin:    stdinOf(ctx),
		stdout:   stdout,
		showBar:  *progress || isTerminal(stderr),
		stderr:   stderr,
	}
	var total importCounts
	for _, name := range fs.Args() {
		f := *format
		if f == "auto" {
			f = "jsonl"
			if strings.EqualFold(filepath.Ext(name), ".csv") {
				f = "csv"
			}
		}
		c, err := im.importFile(ctx, name, f)
		total.add(c)
		if err != nil {
			return err
		}
	}
	if len(fs.Args()) > 1 {
		fmt.Fprintf(stdout, "total: %s\n", total)
	}
	return nil
}

// importCounts is what an import did with the registrations of a file.
type importCounts struct {
	stored, duplicates, skipped int
}

func (c *importCounts) add(o importCounts) {
	c.stored += o.stored
	c.duplicates += o.duplicates
	c.skipped += o.skipped
}

func (c importCounts) String() string {
	return fmt.Sprintf("%d stored, %d already stored, %d skipped (acknowledged in an earlier run)", c.stored, c.duplicates, c.skipped)
}

// importState is the --state file: per input, its content hash and the last line of the
// last acknowledged batch. An input is known by inputKey, which holds no name: a case system
// may name a file by its person, and a state file is kept, copied and attached to tickets as
// a job's progress. Version 1 keyed a file by its absolute path; it is read, and written
// again at once as version 2 (loadImportState).
type importState struct {
	Version int                         `json:"version"`
	Files   map[string]*importFileState `json:"files"`
}

type importFileState struct {
	SHA256    string `json:"sha256"`
	AckedLine int    `json:"acked_line"`
	Done      bool   `json:"done"`
}

// importStateVersion is the version of the --state files import writes.
const importStateVersion = 2

// stdinKeyPrefix begins the key of standard input, known by its content (sha256 in hex), in
// every version.
const stdinKeyPrefix = "stdin:"

// inputKey is the key of an input in the state: standard input ("-") by its content hash, so
// that the same input piped again resumes and another input is a new import; a file by its
// absolute path, digested (filePathKey).
func inputKey(path string, sum [sha256.Size]byte) (string, error) {
	if path == "-" {
		return stdinKeyPrefix + hex.EncodeToString(sum[:]), nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filePathKey(abs), nil
}

// filePathKey is the key of the file at the absolute path abs: its SHA-256, so that the
// state says nothing of the file's name and still tells a file changed in place (same key,
// another content hash) from another file.
func filePathKey(abs string) string {
	h := sha256.Sum256([]byte("nirctl import state path v2\x00" + abs))
	return "path:" + hex.EncodeToString(h[:])
}

// loadImportState reads the state at path ("" for none; a missing file is an empty state).
// A version 1 state, keyed by absolute paths, is converted and saved at once, so that the
// paths it held (a national id among them) leave the disk before the first file is read, and
// an import interrupted before an upgrade of nirctl resumes after it.
func loadImportState(path string) (*importState, error) {
	st := &importState{Version: importStateVersion, Files: map[string]*importFileState{}}
	if path == "" {
		return st, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("--state %s: not an import state file: %w", path, err)
	}
	if st.Files == nil {
		st.Files = map[string]*importFileState{}
	}
	switch st.Version {
	case importStateVersion:
		return st, nil
	case 1:
		files := make(map[string]*importFileState, len(st.Files))
		for k, fst := range st.Files {
			if !strings.HasPrefix(k, stdinKeyPrefix) {
				k = filePathKey(k)
			}
			files[k] = fst
		}
		st.Version, st.Files = importStateVersion, files
		return st, st.save(path)
	}
	return nil, fmt.Errorf("--state %s: version %d, this nirctl reads versions 1 and %d", path, st.Version, importStateVersion)
}

// save writes the state atomically: a temporary file, fsynced, renamed over the old one.
func (st *importState) save(path string) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("--state: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("--state: %w", err)
	}
	return nil
}

type importer struct {
	client interface {
		Append(context.Context, *connect.Request[nirv1.AppendRequest]) (*connect.Response[nirv1.AppendResponse], error)
	}
	state    *importState
	path     string
	batch    int
	maxInput int64 // bytes, see maxImportInput
	showBar  bool
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
}

func (im *importer) importFile(ctx context.Context, path, format string) (importCounts, error) {
	var (
		counts importCounts
		data   []byte
		err    error
		name   = shownName(path)
	)
	if data, err = im.readInput(path, name); err != nil {
		return counts, err
	}
	sum := sha256.Sum256(data)
	key, err := inputKey(path, sum)
	if err != nil {
		return counts, err
	}
	fst := im.state.Files[key]
	switch {
	case fst == nil:
		fst = &importFileState{SHA256: hex.EncodeToString(sum[:])}
		im.state.Files[key] = fst
	case fst.SHA256 != hex.EncodeToString(sum[:]):
		return counts, fmt.Errorf("%s changed since its import began (state %s): the ids derived from its content would differ and lines already stored would be stored again; put new or corrected lines in a new file", name, im.path)
	case fst.Done:
		fmt.Fprintf(im.stdout, "%s: already imported completely (state %s)\n", name, im.path)
		return counts, nil
	}

	read := regfile.ReadJSONL
	if format == "csv" {
		read = regfile.ReadCSV
	}
	checked, err := checkFile(data, read, fst.AckedLine, maxKeptRegistrations)
	if err != nil {
		return counts, fmt.Errorf("%s: %w (nothing of the file was sent)", name, err)
	}
	counts.skipped = checked.skipped

	bar := progressbar.NewOptions64(int64(len(data)),
		progressbar.OptionSetWriter(im.stderr),
		progressbar.OptionSetVisibility(im.showBar),
		progressbar.OptionSetDescription(shownName(filepath.Base(path))),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	defer func() { _ = bar.Exit() }()

	var pending []regfile.Line
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		regs := make([]*nirv1.Registration, len(pending))
		for i, p := range pending {
			regs[i] = p.Registration
		}
		res, err := im.client.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: regs}))
		if err != nil {
			first, last := pending[0].Number, pending[len(pending)-1].Number
			if ctx.Err() != nil {
				return fmt.Errorf("%s: interrupted while lines %d-%d were in flight; acknowledged up to line %d; run again with the same --state to resume: %w", name, first, last, fst.AckedLine, ctx.Err())
			}
			return fmt.Errorf("%s: %w; %s", name, batchError(err, pending), storedUpTo(fst.AckedLine))
		}
		for _, p := range res.Msg.GetPositions() {
			if p.GetDuplicate() {
				counts.duplicates++
			} else {
				counts.stored++
			}
		}
		fst.AckedLine = pending[len(pending)-1].Number
		if err := im.state.save(im.path); err != nil {
			return err
		}
		_ = bar.Set64(pending[len(pending)-1].End)
		pending = pending[:0]
		return nil
	}
	each := func(l regfile.Line) error {
		if l.Registration.GetEvent() != nil && l.Registration.GetEvent().GetId() == "" {
			l.Registration.Event.Id = derivedEventID(sum, l.Number)
		}
		pending = append(pending, l)
		if len(pending) >= im.batch {
			return flush()
		}
		return nil
	}
	if err = checked.each(each); err == nil {
		err = flush()
	}
	if err != nil {
		return counts, err
	}
	fst.Done = true
	if err := im.state.save(im.path); err != nil {
		return counts, err
	}
	_ = bar.Finish()
	fmt.Fprintf(im.stdout, "%s: %s\n", name, counts)
	return counts, nil
}

// maxImportInput is the largest input import reads: it holds the whole of it in memory. A
// million registrations are some 300 MiB.
const maxImportInput = 1 << 30

// readInput reads the input path ("-" for standard input) whole, up to im.maxInput bytes;
// its errors call it name. A named input must be a regular file or a pipe (a FIFO, <(…)): a
// device such as /dev/zero or /dev/urandom never ends, and was read until memory ran out.
func (im *importer) readInput(path, name string) ([]byte, error) {
	r := im.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, pathError(name, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, pathError(name, err)
		}
		if !fi.Mode().IsRegular() && fi.Mode()&os.ModeNamedPipe == 0 {
			return nil, fmt.Errorf("%s: not a file or a pipe (%s)", name, fi.Mode().Type())
		}
		r = unnamedReads{f}
	}
	data, err := io.ReadAll(io.LimitReader(r, im.maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > im.maxInput {
		return nil, fmt.Errorf("%s: more than import reads (%d bytes); split it", name, im.maxInput)
	}
	return data, nil
}

// shownName is an input's path as import prints it, in its summary, its progress bar and its
// errors: with a national id masked (a case system may name a file by its person, and a job
// log keeps what import prints) and, if it holds any, its control characters escaped (a
// terminal obeys them; a drop directory's names are the sender's).
func shownName(path string) string {
	s := rules.RedactIDs(path)
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		s = strconv.QuoteToGraphic(s)
	}
	return s
}

// pathError is err, of the file shown as name, without the path an *fs.PathError repeats.
func pathError(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %s: %w", name, pe.Op, pe.Err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// unnamedReads is f, whose read errors do not repeat its path as an *fs.PathError does: the
// caller names the file (shownName). A file that opens and then fails to read (a failing
// disk) printed its path as written, a national id in it too.
type unnamedReads struct{ f *os.File }

func (r unnamedReads) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return n, err
}

// derivedEventID is the event id of a line without one: a ULID whose 80 random bits are
// SHA-256(domain, file hash, line) and whose time part is zero (the id says nothing about
// time; the register's recorded_at does).
func derivedEventID(fileSum [sha256.Size]byte, line int) string {
	h := sha256.New()
	h.Write([]byte("nirctl import event id v1\x00"))
	h.Write(fileSum[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(line))
	h.Write(n[:])
	var id ulid.ULID
	copy(id[6:], h.Sum(nil)[:10])
	return id.String()
}

// storedUpTo says, of an import stopped by an error, what of the file is stored and how to
// go on without storing it twice: the file corrected in place derives other ids for every
// line, and a run without --state stored its stored lines again.
func storedUpTo(acked int) string {
	if acked == 0 {
		return "nothing of the file is stored"
	}
	return fmt.Sprintf("the file is stored up to line %d: run it again unchanged to resume, or put the lines after line %d, corrected, in a new file "+
		"(changed, this file derives other event ids, and its stored lines would be stored again)", acked, acked)
}

var registrationIndex = regexp.MustCompile(`^registrations\[(\d+)\]`)

// batchError says which line of the batch the server refused, when it says which
// registration: an InvalidArgument or PermissionDenied names the field
// "registrations[i]…", a rule refusal names the event id.
func batchError(err error, batch []regfile.Line) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return callErr(fmt.Sprintf("append (lines %d-%d)", batch[0].Number, batch[len(batch)-1].Number), err)
	}
	line := 0
	if m := registrationIndex.FindStringSubmatch(ce.Message()); m != nil {
		if i, _ := strconv.Atoi(m[1]); i < len(batch) {
			line = batch[i].Number
		}
	}
	for _, det := range ce.Details() {
		if v, derr := det.Value(); derr == nil {
			if r, ok := v.(*nirv1.RuleRefusal); ok && line == 0 {
				for _, l := range batch {
					if l.Registration.GetEvent().GetId() == r.GetEventId() {
						line = l.Number
					}
				}
			}
		}
	}
	where := fmt.Sprintf("lines %d-%d", batch[0].Number, batch[len(batch)-1].Number)
	if line > 0 {
		where = fmt.Sprintf("line %d (in the batch of lines %d-%d; nothing of the batch was stored)", line, batch[0].Number, batch[len(batch)-1].Number)
	}
	return fmt.Errorf("%s: %s: %s", where, ce.Code(), ce.Message())
}

// isTerminal reports whether w is a terminal, where a progress bar belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
