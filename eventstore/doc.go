// Package eventstore keeps the register's events in one NATS JetStream stream, and is the
// only part of the product that reads or writes that stream, manages it or its key-value
// buckets, or runs the embedded server.
//
// Other packages use NATS only as a transport, never for the stream: natsingress serves
// case systems' append requests as a NATS service over a connection of its own (made by
// Store.Connect or by cmd/nird with its own credentials), natsauth writes and reads those
// credentials, and nirctl connects with them to reach a store (replay --nats). The test and
// measurement tools (the benchmarks of the bare engine, the fault-injection suite, tests
// that damage a stream on purpose) talk to JetStream directly, through Conn or their own
// connections; nothing in nird does.
//
// # Model
//
// Every event is one message in the stream NIR_EVENTS (file storage), on the subject
// nir.ev.<person key>: one subject per person, never a stream per person. The person key
// is a keyed hash, so no national id ever appears in a subject; keys are checked to be
// safe subject tokens, and an 11- or 12-digit key (the shape of a plain national id) is
// refused. The stream sequence is the one global order of the register.
//
// The stream definition lives in this package only (streamConfig): subjects nir.ev.*,
// direct gets allowed, atomic batch publish allowed, a dedupe window, replicas from
// Config, and deletes and purges denied, because history is immutable. Open creates the
// stream if it is missing and otherwise only verifies it: a setting that differs is logged,
// CheckStream reports it (nird exports it as a metric), and RepairStream, the operator's
// explicit step, puts it back. Open never changes an existing stream. The one write to the
// configuration besides those is MarkBackdated, called by a history load (nird --demo on an
// empty register): it adds a metadata entry that as-of replays read, and no setting.
//
// With Config.URL empty, Open runs an embedded server with JetStream in Config.Dir,
// syncing every write before acknowledging it (sync_interval: always). The store talks to
// it in-process, as a user whose key exists only in memory and who has StorePermissions;
// every other client must be one of Config.Users (an nkey each, no anonymous user), and a
// TCP port is opened only if Config.Listen asks for one, on loopback. With Config.URL set,
// it connects to an external server or cluster (replicas 3 there) with
// Config.NATSOptions. Either way the store's replies come to InboxPrefix, and its
// connection must never serve clients (see Conn).
//
// # Guarantees
//
//   - Durability: an acknowledged Append is fsynced (embedded server) or stored on a
//     quorum (replicated stream, if the cluster is configured to sync).
//   - Atomicity: all events of one Append call, across any number of persons, are stored
//     as one atomic batch and contiguously in sequence, or none are.
//   - Optimistic concurrency: each person with an ExpectedLastSeq is checked by the
//     server against its last sequence (the first message of each person in the batch
//     carries Nats-Expected-Last-Subject-Sequence). Of two writers that folded the same
//     history, exactly one succeeds; the other gets ErrConflict and nothing of its batch
//     is stored. Both wrong-last-sequence codes (10071 and 10164) are ErrConflict.
//   - Idempotency by event id, inside and after the dedupe window: every message carries
//     Nats-Msg-Id = event id. The server drops a single retried message inside the
//     window, but refuses a whole atomic batch holding an already-stored id (10201), and
//     forgets ids after the window. So on a conflict or a 10201 Append re-reads the
//     persons: events already in their history are not sent again and get their original
//     position with Duplicate set; if the only events after the caller's expected sequence
//     are the call's own (an earlier attempt), the check moves past them. A call whose
//     events are all stored returns the original positions and no error. For a person
//     without ExpectedLastSeq the history is read before publishing.
//   - Read uses direct gets by subject; no consumer is created per read. Replay uses
//     direct gets for short ranges and an ephemeral ordered consumer for long ones. On a
//     single server a direct get never sees half of an atomic batch.
//   - Replay with RecordedUntil returns exactly the events whose recorded_at is at or
//     before the cut-off (see Replay for the clock assumption).
//   - Decode is the one place events are decoded; an undecodable message yields a
//     *DecodeError naming its stream sequence, never a panic, and never its content.
//   - No stored message stops a reader. A message that is not a usable event (it does not
//     decode, has no id, or its envelope names another person than its subject; nird never
//     writes one, see Encode) is quarantined: Read leaves it out of the person's history
//     (logged once by sequence, counted in Stats) but counts it for the last sequence an
//     append is checked against, so appends to the person go on; Replay delivers it with
//     Stored.Quarantine set and goes on past it.
//
// # Group commit
//
// With every write synced, JetStream does not coalesce independent publishes, so Append
// does: concurrent calls queue up, and a committer sends them as one atomic batch,
// bounded by GroupCommit.MaxEvents, MaxBytes and MaxWait, while the previous batch is
// being stored; right after a batch, the committer waits at most MaxWait for its callers'
// next appends, so batches do not alternate between two halves of the callers. While it
// waits (for more callers, or for the batch in flight), the messages of the batch being
// formed are already sent to the server, which stages them meanwhile; the commit, sent
// when the batch is complete or MaxWait is over, then only stores them (on a file stream
// the staging is most of a batch's cost). A lone caller on an idle store is sent at once.
// A small group of single events goes as concurrent plain publishes (cheaper than a batch
// on a file stream). Each caller waits only for its own result:
//
//   - a batch the server refuses for one member's stale check is resolved per member:
//     the last sequence of every person in the batch is fetched in one request, the stale
//     members are re-read (ErrConflict, or their idempotent positions) and the others are
//     sent again without them, so nothing is written twice and nobody else fails;
//   - a person is in at most one batch at a time (a later call for a person waits for
//     the batch holding it), so per-person order equals acknowledgement order and every
//     check is judged against the outcome of the earlier call;
//   - the members of one batch share its atomicity, which only strengthens each call's;
//     a batch sent ahead is only stored by its commit, so until then it is as if nothing
//     had been sent (if a message of it fails to reach the server, the whole batch is sent
//     again; the server drops the abandoned one after its batch timeout);
//   - Close commits the batch being formed and waits for the ones in flight; calls still
//     queued get ErrClosed.
//
// Stats returns the counters (appends, events, duplicates, conflicts, batches, batch
// sizes, re-sent batches, events sent ahead) for metrics; nothing is registered globally.
//
// # Caveats
//
//   - One Append call holds at most MaxBatchEvents events, the atomic batch limit the
//     embedded server is given; an external server needs it too (deploy/nats's
//     configurations set jetstream { limits { batch { max_msgs } } }), or an append past the
//     server's default, 1000, is ErrTooLarge naming the setting. A person appears at most
//     once per call.
//   - On a replicated stream every replica answers direct gets, and a follower may lag
//     (catching up, or cut off by a partition). A Read or a short Replay that reaches the
//     end of a replica's answer asks the stream leader whether there is more, and walks on
//     until it has what the leader has (one extra request to the leader per Read; none on
//     a single replica). Without the leader (no quorum) they fail instead of answering from
//     a lagging replica.
//   - An atomic batch on a file stream costs a fixed several milliseconds on the server
//     (it is staged in a file store of its own), so group commit pays off from about ten
//     concurrent callers; see BenchmarkGroupCommit for this machine's figures.
//   - A caller whose ctx ends while its call is queued or in flight gets ctx's error; the
//     events may still be stored. Retrying with the same ids tells.
//   - After a transport error (timeout, lost connection) the outcome of an Append is
//     unknown. Retrying it with the same event ids is always safe.
//   - An event id must be unique across the register (it is a ULID) and name one event.
//     An id stored for another person is refused with ErrIDInUse while the dedupe window
//     remembers it; after that only an index of every stored id can tell (internal/ingest
//     asks the read models'). An id stored for the same person with other content
//     (SameEvent) is refused with ErrIDReused, inside and after the window.
package eventstore
