// Package rules is the regelmotor: the register's law as pure, deterministic functions.
//
// # Model
//
// A person's events (stream order, one NATS subject per person) are folded into a State
// (Fold, or NewState and Apply one event at a time): the person, their law, moves,
// introduction programmes per kommune stint, training, hours, leave and terminations.
// Check decides whether new events may be appended to a State (the registration matrix of
// DOMAIN.md 1.4, 2.2, 3.2 and Product decisions 5), and returns Refusals with a stable code,
// the rule, the DOMAIN.md section, the rule version and a message in Norwegian and English.
// Evaluate derives the person's law, schemes and deadlines with their status at a given
// date. DueTerminations returns the computed terminations (DOMAIN.md Product decisions 5)
// that are due, as ready-to-append events with deterministic ids. Explain puts it all
// together in a nirv1.PersonStatus.
//
// Every rule is versioned by validity dates (Version): a law change is a new version in the
// rule's table, selected by the effective date, so that replaying 2022 applies 2022's rules.
// Refusals, deadlines and computed terminations name the version applied.
//
// # Guarantees
//
//   - No I/O and no clock: "now" is always an argument. The package imports only the
//     standard library and the generated protobuf package.
//   - Determinism: the same events in the same stream order give the same State, the same
//     refusals, statuses and computed events (with the same ids), on any machine, at replay.
//   - Apply never panics, whatever the sequence of events: unknown or empty payloads, missing
//     dates, retractions of unknown events, effective dates out of order.
//   - EventRetracted removes the retracted event's effect by re-folding the person without
//     it; retracting a retraction restores the original event.
//   - A computed termination that the kommune deleted is never computed again for the same
//     programme and rule (its deterministic id is remembered in the State).
//   - No national id ever appears in a refusal, a status or a computed event.
//
// # Caveats
//
// Where DOMAIN.md marks a rule as inference [I] or a gap [G], the package follows the
// product decisions and says so in the rule's comment: for example approved leave extends the
// programme time (DOMAIN.md 2.6 [I]), 6A programmes follow the ordinary IL sluttmål table
// (1.5 [G]), and no norsk deadline is computed under introduksjonsloven (9.6 [G]).
package rules
