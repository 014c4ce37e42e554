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
//   - Should a bug in the rules panic on an event all the same, Apply contains it (defence in
//     depth, so that one stored event cannot stop nird): the event is treated as quarantined,
//     kept in the log and the id set but left out of the derived state, which is re-derived
//     without it, and recorded in State.Faults. Which events fault depends only on the events
//     and their order, so Fold, Apply one by one, ApplyAll, Copy and a rebuild agree: they
//     are what one re-fold of the whole log at its last retraction finds, and what folding
//     each later event finds. SetFaultForTest lets tests make the fold panic; nird never
//     calls it.
//   - EventRetracted removes the retracted event's effect by re-folding the person without
//     it; retracting a retraction restores the original event. Apply re-folds at each
//     retraction; ApplyAll (and Fold) once for all of them, so a history read whole folds
//     in time linear in its events. A retraction retracts only an event the log made known
//     before it (Check refuses any other): one of an id that comes later retracts nothing,
//     however the log is read.
//   - A computed termination that the kommune deleted is never computed again for the same
//     programme and rule, even when its date would now differ: the deleted event stays in
//     the State's log, and the deletion holds on every re-fold.
//   - A computed termination ends its programme only while the trigger it rested on holds
//     on the history as it stands (Termination.Lapsed): a retracted stans or move, or a
//     correction that moved the latest end, leaves it in history without effect, and a
//     later trigger computes a new one.
//   - No national id ever appears in a refusal, a status or a computed event.
//
// # Fold details
//
//   - Programmes are kommune stints: a tildeling in a kommune opens a programme unless one is
//     open there (not terminated, not stopped); other programme events (sluttmål, tiltak,
//     fravær, permisjon, utvidelse, stans, termination) attach to the stint in the event's
//     kommune that had started on their effective date, else the latest one there. An event
//     folded before its tildeling waits and attaches when the tildeling arrives. With two
//     stints in one kommune, the stint that exists when an event is folded takes it: there
//     the stream order decides, as it did for the kommune that registered the event.
//   - Moves are ordered by effective date; KommuneOn answers "bostedskommune on date d".
//   - Hours: a later registration for the same type and month replaces the earlier one (a
//     re-sent monthly total), so nothing is counted twice.
//   - Terminations: the latest registered termination is the effective one; otherwise the
//     earliest-dated computed one neither deleted nor lapsed (a programme ends once). A
//     stans vedtak ends the programme on its date (Product
//     decisions 11). The first PersonRegistered wins; a second is refused by
//     Check, and the way to correct a registration is to retract it and register again.
//
// # Product decisions 10–14
//
// Issue 11 settled what DOMAIN.md left open; DOMAIN.md lists them under "Product decisions"
// 10–14, and the rules here cite them so:
//
//   - 10, sluttmål and deltakergruppe (DOMAIN.md 2.2): under integreringsloven a sluttmål whose
//     deltakergruppe contradicts the registered utdanningsbakgrunn (høyere utdanning and
//     arbeid for those with upper secondary from before; the others for those without) is
//     refused with NIR-R026, naming both. An utdanningsbakgrunn registered or corrected
//     after the sluttmål is accepted, and the programme end is CANNOT_COMPUTE with the
//     reason, computing nothing, until the kommune corrects one of them. Chapter 6A is left
//     out: there the utdanningsbakgrunn serves utvidet opplæring only.
//   - 11, stans (DOMAIN.md 2.5, 2.6): a stans vedtak ends the programme on its date. With no
//     avslutningsårsak registered within 30 days of it, the regelmotor computes «Avslutningsårsak
//     ikke registrert» dated on the stans date (rule avslutning-stans); IL: «Legg til»,
//     IntroL: delete, then register.
//   - 12, IntroL and leave (DOMAIN.md 1.6, 2.6): approved leave is not programme time, so the
//     3-year maximum moves by the leave, as under integreringsloven. Decided, no longer an
//     inference (testdata/introl_leave_moves_3_years.txt).
//   - 13, kommune history (DOMAIN.md 7.3): any kommune number valid on an event's date is
//     accepted, from 2004 (SSB classification 131, kommuner_README.md); a number and the
//     numbers it became or came from are one kommune for a person's programme (SameKommune).
//     A past year's statistics use that year's structure, optionally today's, with the
//     mapping shown (KommuneIn).
//   - 14, publishable statistics: figures served to analysts and exported suppress counts of
//     1–4 («:» with a footnote, as SSB does) and what would let one be recovered from a total
//     (Suppress); a kommune sees its own figures unsuppressed; the threshold is configurable
//     (DefaultMinCount 5).
//
// Also from issue 11: inactivity (DOMAIN.md Product decisions 5c) is the rule
// avslutning-inaktiv, 12 months without any registration and 30 days' notice as rule-version
// parameters until IMDi confirms a figure; a month of training hours counts from the start of
// the vedtak covering it; every rule version names its first date, and an explanation says
// when a version was applied to a date before it.
//
// # Caveats
//
// Where DOMAIN.md marks a rule as inference [I] or a gap [G], the package follows the
// product decisions and says so in the rule's comment: for example 6A programmes follow the
// ordinary IL sluttmål table (1.5 [G]), and no norsk deadline is computed under
// introduksjonsloven (9.6 [G]) or for plikt without rett. Chapter 6A covers § 34 permits
// granted before 2026-07-01, the end date in force (DOMAIN.md 1.1); a prolongation is one new
// lovvalg version. "Started within 3 months" counts a month with registered hours from the
// later of its first day and the start of the vedtak period covering it (training cannot start
// before its vedtak). A deadline is DUE_SOON within DueSoonDays (30) days. Explain checks every
// event at the explain date, not at the date nird received it, so the date-range rule
// (NIR-R030) can judge an old event differently there; `nirctl rules explain` does not use it
// for what it previews, but nird's own append path.
package rules
