// Package regfile reads the files case systems send the register: registrations as
// protojson lines (JSONL, one nir.v1.Registration a line, as for nirctl append) or as CSV,
// a header row and one registration a row, for the event types case systems most often load
// in bulk. It maps and checks the format only (dates, numbers, enum names, which columns);
// whether a registration may be stored is nird's to say, on the append path.
//
// The CSV columns, by header name in any order (empty cells are unset; a column the format
// does not define is refused, so a misspelt header never drops data silently; so is a row
// with a value past the header's columns, and a cell that is not UTF-8; empty cells past the
// last column, the header's too, are none, as a spreadsheet writes them):
//
//	type           person_registered | person_moved | training_vedtak | training_hours |
//	               identifier_added (required)
//	national_id    fødselsnummer, D-nummer or DUF-nummer (required)
//	kommune        kommunenummer registering the event (required)
//	event_id       ULID; the importer derives one when empty
//	correlation_id free reference of the case system (no personal data)
//	person_registered: birth_date, sex, permit_date, permit_basis, arrival_date,
//	               settlement_date, settlement_kommune (default: kommune), settled_by_agreement
//	person_moved:  to_kommune, date
//	training_vedtak: scheme, vedtak_type, vedtak_date, start_date, end_date
//	training_hours: hours_type, month (YYYY-MM), hours, absence_hours (a decimal comma is read)
//	identifier_added: new_id (a further id of the person), date, source
//
// Dates are YYYY-MM-DD; enum values are the schema's names, with or without their prefix,
// in ASCII case (a look-alike letter such as ſ is refused, not folded into s), and never the
// *_UNSPECIFIED name (an empty cell is unset); numbers are finite (not NaN or Inf);
// a leading byte-order mark (as spreadsheet programs write) is ignored; fields are separated
// by semicolons when the header row holds a semicolon and no comma (Excel's CSV where the
// decimal separator is a comma, as in Norwegian), else by commas, unless the file's first
// line (after the mark) is "sep=;" or "sep=,", as Excel writes in some exports: it chooses
// the separator, and is no header; a record is at most 64 KiB in at most 1024 cells.
// CSVColumnsHelp is the same list as help text. Errors name the line and the column and
// never repeat a national id.
//
// A JSONL line is held to the same values where protojson is laxer: a number must be finite
// (protojson reads "NaN" and "Infinity"), a date or month of the calendar, an enum number one
// the schema names. Enum names are protojson's: exact, in upper case; the *_UNSPECIFIED name
// is read as unset there, since protojson writes it so when emitting defaults. A leading
// byte-order mark is skipped, and a line ends at LF (a CR before it is white space).
//
// A file in UTF-16 (its byte-order mark shows it) is refused in both formats, saying so.
package regfile
