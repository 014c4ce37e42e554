// Package access decides who may see and write which person: the one home of nir's access
// rules, called by every edge (the Connect API, the NATS ingress, the CSV export, the web
// console, which calls the API's services in process) and by the append path.
//
// # Model
//
// A caller's [Scope] is built once at the edge from its authenticated principal ([For]); the
// regelmotor and the demo loader, which run inside nird, use [System]. The role decides the
// broad strokes (auth.Role): a kommune reads and writes its own persons, an analyst reads
// pseudonymous rows and statistics, an operator no person data (it writes only the merge of
// two persons and its retraction, naming them by key), the system principal everything. For a
// kommune, which persons are its own follows from the person's bostedskommune history
// ([Periods]), folded from the person's events by the regelmotor (rules.State), so that the
// rules and the access decisions read the same history.
//
// A kommune's [Relation] to a person is one of:
//
//   - Current: the person lives in the kommune: the settlement kommune, or the destination of
//     the latest move (the kommune of the person's row in the person list).
//   - Former: the person lived in the kommune earlier and has moved on. The kommune keeps its
//     own period (DOMAIN.md Product decisions 16).
//   - None: the kommune never had the person. The person is hidden: every answer is NotFound,
//     the same as for a person nobody registered, so a kommune cannot learn whether another
//     kommune's person exists. Nor from the time the answer takes: the relation depends only
//     on the person's [Reach] (the kommuner it lives and lived in, [ReachOf] its fold), which
//     the read models keep per person, so that the edges and the append path tell a hidden
//     person ([Scope.Hidden]) before they read and fold its history.
//
// # Rules (DOMAIN.md Product decisions 8 and 16, 7.4)
//
// Writing, for a kommune (the system principal may write anything the regelmotor accepts):
//
//   - Every event is registered for the caller's own kommune (the envelope's kommune).
//   - A person is registered only by the kommune the person is settled in: the
//     PersonRegistered's settlement_kommune is the caller's kommune.
//   - A move is recorded only by the kommune the person lives in (Current), or by a system
//     principal such as a population-register feed; never by the receiving kommune on its own.
//     The move is to another kommune and not dated before the person came to the caller's
//     kommune.
//   - A retraction (EventRetracted) or the deletion of a computed termination is made by the
//     kommune that wrote the event (its envelope's kommune). After a move, the kommune that now
//     has the person may also retract another kommune's registrations dated within its own
//     period, when that kommune did not have the person on that date (for example hours
//     registered for a month after the person left); never a registration or a move. A move
//     is retracted only while no later move follows it, and a registration only while the
//     person lives in the kommune that wrote it (else the population register corrects it).
//   - After a move, the former kommune registers only within its own period: each event's
//     effective date (DOMAIN.md 8) lies on or before the date the person left.
//   - Computed terminations are recorded by the regelmotor only.
//
// Reading:
//
//   - History and AuditHistory hold national ids: a Current kommune and the system principal
//     see every event; a Former kommune sees its own period: the events registered for it,
//     the person's registration (the identity it knew), the moves into and out of it, and the
//     corrections of those events.
//   - The person's status (GetPerson, PersonDeadlines) is the person as of now: for the
//     Current kommune, for analysts without national ids, and for the system principal.
//   - The person list, its CSV export, the report and the statistics of a kommune are the
//     kommune's own only ([Scope.Kommune], [Scope.Fylke]); analysts see every kommune without
//     national ids.
//
// A move counts from the moment it is recorded, whatever its date: the person list shows the
// person in the new kommune at once, and access follows the same history, so that the list and
// every other answer agree. The move's date decides, for the former kommune, which of its
// registrations lie within its own period.
package access
