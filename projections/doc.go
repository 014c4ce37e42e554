// Package projections folds the event stream into the register's read models and serves
// queries on them (DESIGN.md "Projections").
//
// # Model
//
// One bbolt file (a DB) holds the whole read-model set: the audit history (every event per
// person), the person list per bostedskommune with its filters and CSV export (DOMAIN.md 6.1),
// deadline status per person, statistics per data year for each kommune, fylke and the nation,
// the report of terminated participants (DOMAIN.md 6.2), the due dates the regelmotor
// worker watches, and the event-id index (every stored event's id → its stream sequence,
// which the append path asks whether an id is already stored for another person once the
// stream's dedupe window has forgotten it: DB.EventPersons). Every model is derived from the person's state as folded by the regelmotor
// (rules.State), so the read models agree with the rules: on each event the person's state is
// advanced and the person's old rows and statistics contributions are replaced by new ones.
// That is how corrections (EventRetracted, ComputedTerminationDeleted, a reason the kommune
// registers over a computed termination) show in every model.
//
// The package reads the stream through the Feed interface it declares; *eventstore.Store is
// adapted to it in internal/feed, and tests use a SliceFeed. It never imports NATS.
//
// # Guarantees
//
//   - Each model's checkpoint (last applied stream sequence) and schema version are written in
//     the same transaction as its data. Events at or below the checkpoint are skipped, so
//     redelivery, restarts and a process killed mid-batch change nothing: the next run resumes
//     from the committed checkpoint and reaches the same models.
//   - Apply is deterministic and reads no clock (like a raft FSM apply). Time-dependent statuses
//     (overdue, due soon) are computed at query time from stored dates and a now argument.
//     Statistics are integer counters (hours in hundredths), so an incremental build and a clean
//     rebuild are byte-for-byte equal (DB.Dump).
//   - Rebuild reads from sequence 1 into a new file with large unsynced transactions, fsyncs it
//     once and swaps it in; queries in flight finish on the old file (Projector.Use). It works
//     in two passes: store every event, then fold each person once (on every CPU) and write the
//     models. That gives the same file as applying in stream order, because every model is
//     derived from the person's final state and the statistics are integer sums; tests compare
//     the dumps.
//   - A stream message that is not a usable event (Record.Quarantine from the feed, or an
//     event a rebuild's fold finds undecodable, without id or with another person's
//     envelope) is quarantined: skipped by every model, its sequence and reason recorded in
//     the quarantine bucket in the same transaction as the checkpoint and logged (never its
//     content). Catching up, a rebuild and an as-of replay quarantine the same messages and
//     build the same file (DB.Quarantined, Status, Stats).
//   - An event the rules panic on (a bug; rules.State.Faults) is quarantined the same way, as
//     QuarantineFoldFault, but stays stored and in its person's history: the fold leaves it
//     out of the person's state each time it meets it, so catching up, a rebuild and an
//     as-of replay agree here too, and one such event stops neither the worker nor others.
//     The faults are the person's log's (a retraction's re-fold finds them anew), so catching
//     up removes the entry of an event that counts again (foldFresh), as a rebuild never
//     makes it.
//   - The live models are served only while they belong to the stream (Check): the file
//     records the identity of the stream it was built from (Identifier), its checkpoint must
//     lie within the stream, and the last event it stored must still be the stream's message
//     at that sequence. Otherwise (the stream deleted and re-created, rolled back, another
//     register's file) Run rebuilds them, and until then Use("") fails with ErrUnavailable.
//     A last event the stream counts but cannot read back (damaged on disk) is not compared:
//     the models are kept, with a warning.
//   - No damaged byte of a read-model file is served, and none crashes the process: every
//     value carries a CRC-32C of its key and value (crc.go; each event of a block its own),
//     checked on every read inside a guarded transaction (a failed check, bbolt's assertions
//     and memory faults become ErrCorrupt), and Open walks the file's pages itself before
//     bbolt does (filecheck.go). A damaged live file is moved aside and rebuilt by Run, and
//     not served until then (ErrUnavailable); Verify checks a live file thoroughly.
//   - AsOf replays with a recorded-time cut-off (applied by the feed) into a temporary file with
//     the same code; the result can be kept as a named snapshot and queried like the live models.
//
// # Caveats
//
//   - The person list shows a person in their current bostedskommune only (after the latest
//     move, by effective date); the statistics count a programme in its own kommune and hours in
//     the kommune that registered them for the month. A person in the programme in two of
//     a fylke's kommuner in one year counts in each, and twice in the fylke and the nation
//     (participants count programmes; see README "Statistics: what is counted").
//   - Statistics count an open programme up to the year of its latest end date (the regelmotor
//     terminates it then), at most 10 years.
//   - The start-within-3-months deadline (DOMAIN.md 3.5, Product decisions 6) is computed here
//     from the settlement in the kommune and the training demand, since the rules package keeps
//     its version unexported.
//   - A rebuild interrupted by a crash starts again from sequence 1; the half-built file is
//     removed by the next New.
//   - Folded person states are cached in memory between live batches (DBOptions.StateCache).
//     A rebuild holds only a chunk of persons at a time: 1.1M events (40 000 persons) peaked at
//     about 0.35 GiB RSS, most of it the mapped file.
//
// # Layout
//
// Buckets: meta (checkpoint and schema per model), events (64 consecutive stream sequences per
// value, appended in order), pevents (person key → the person's sequences), persons (person key →
// PersonAccess: bostedskommune, who reaches the person, last sequence), list (kommune, person key → PersonRow), stats (year, kommune → Counters),
// terminated (year, kommune, person key → TerminatedRow), due (date, person key: the
// regelmotor worker's schedule) and quarantine (sequence → reason). Events are keyed by
// sequence rather than by person because random-key inserts into one large bucket make big
// transactions quadratic in bbolt, and packed 64 to a value because a put per event was the
// largest cost of a rebuild.
package projections
