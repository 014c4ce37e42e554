package web

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// The code lists in the domain's own words (bokmål), as the schema's comments name them
// (proto/nir/v1/codes.proto). An option list keeps the schema's order.

type option struct {
	Value string // the URL or form value: the enum name without its prefix, e.g. "IL"
	Label string
}

var lawLabels = map[nirv1.Law]string{
	nirv1.Law_LAW_INTROL: "Introduksjonsloven",
	nirv1.Law_LAW_IL:     "Integreringsloven",
	nirv1.Law_LAW_IL_6A:  "Integreringsloven kapittel 6A",
}

var lawShort = map[nirv1.Law]string{
	nirv1.Law_LAW_INTROL: "IntroL",
	nirv1.Law_LAW_IL:     "IL",
	nirv1.Law_LAW_IL_6A:  "IL 6A",
}

var sexLabels = map[nirv1.Sex]string{nirv1.Sex_SEX_MALE: "Mann", nirv1.Sex_SEX_FEMALE: "Kvinne"}

var sluttmalLabels = map[nirv1.Sluttmal]string{
	nirv1.Sluttmal_SLUTTMAL_HOYERE_UTDANNING: "Høyere utdanning",
	nirv1.Sluttmal_SLUTTMAL_ARBEID_VGO:       "Arbeid (med videregående fra før)",
	nirv1.Sluttmal_SLUTTMAL_FULLFORT_VGO:     "Fullføre videregående opplæring",
	nirv1.Sluttmal_SLUTTMAL_ARBEID:           "Arbeid",
	nirv1.Sluttmal_SLUTTMAL_GRUNNSKOLE:       "Fullføre deler av eller hele grunnskolen",
	nirv1.Sluttmal_SLUTTMAL_VGO_DELER:        "Fullføre deler av videregående opplæring",
}

var reasonLabels = map[nirv1.TerminationReason]string{
	nirv1.TerminationReason_TERMINATION_REASON_ARBEID:                        "Arbeid",
	nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_VGO:                 "Utdanning: videregående opplæring",
	nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_HOYERE:              "Utdanning: høyere utdanning",
	nirv1.TerminationReason_TERMINATION_REASON_UTDANNING_GRUNNSKOLE:          "Utdanning: grunnskole",
	nirv1.TerminationReason_TERMINATION_REASON_ARBEID_OG_UTDANNING:           "Arbeid og utdanning",
	nirv1.TerminationReason_TERMINATION_REASON_NAV_TILTAK:                    "NAV-tiltak eller registrert arbeidssøker",
	nirv1.TerminationReason_TERMINATION_REASON_FLYTTET:                       "Flyttet til annen kommune",
	nirv1.TerminationReason_TERMINATION_REASON_PERMISJON_FODSEL_IKKE_TILBAKE: "Ikke tilbake etter permisjon ved fødsel eller adopsjon",
	nirv1.TerminationReason_TERMINATION_REASON_SYKDOM:                        "Sykdom",
	nirv1.TerminationReason_TERMINATION_REASON_UTVANDRET:                     "Utvandret",
	nirv1.TerminationReason_TERMINATION_REASON_STANSET:                       "Stans etter vedtak",
	nirv1.TerminationReason_TERMINATION_REASON_ANNET:                         "Annet",
	nirv1.TerminationReason_TERMINATION_REASON_IKKE_REGISTRERT:               "Avslutningsårsak ikke registrert",
}

var kindLabels = map[nirv1.TerminationKind]string{
	nirv1.TerminationKind_TERMINATION_KIND_FULLFORT: "Fullført",
	nirv1.TerminationKind_TERMINATION_KIND_AVBRUTT:  "Avbrutt",
	nirv1.TerminationKind_TERMINATION_KIND_STANSET:  "Stanset etter vedtak",
}

var tiltakLabels = map[nirv1.TiltakCode]string{
	nirv1.TiltakCode_TILTAK_CODE_NORSK_SAMFUNNSKUNNSKAP: "Norskopplæring med samfunnskunnskap",
	nirv1.TiltakCode_TILTAK_CODE_SPRAKPRAKSIS:           "Språkpraksis",
	nirv1.TiltakCode_TILTAK_CODE_GODKJENNING_UTDANNING:  "Godkjenning av utdanning",
	nirv1.TiltakCode_TILTAK_CODE_ARBEID_OFFENTLIG:       "Arbeid i offentlig sektor",
	nirv1.TiltakCode_TILTAK_CODE_ARBEID_PRIVAT:          "Arbeid i privat sektor",
	nirv1.TiltakCode_TILTAK_CODE_ARBEIDSPRAKSIS:         "Arbeidspraksis",
	nirv1.TiltakCode_TILTAK_CODE_YRKESPROVING:           "Yrkesprøving",
	nirv1.TiltakCode_TILTAK_CODE_KURS:                   "Kurs i regi av kommune eller stat",
	nirv1.TiltakCode_TILTAK_CODE_GRUNNSKOLE:             "Grunnskole",
	nirv1.TiltakCode_TILTAK_CODE_VIDEREGAENDE:           "Videregående opplæring",
	nirv1.TiltakCode_TILTAK_CODE_HOYERE_UTDANNING:       "Høyere utdanning",
	nirv1.TiltakCode_TILTAK_CODE_LIVSMESTRING:           "Livsmestring i et nytt land",
	nirv1.TiltakCode_TILTAK_CODE_FORELDREVEILEDNING:     "Foreldreveiledning",
	nirv1.TiltakCode_TILTAK_CODE_KOMPETANSEKARTLEGGING:  "Kompetansekartlegging",
	nirv1.TiltakCode_TILTAK_CODE_KARRIEREVEILEDNING:     "Karriereveiledning",
	nirv1.TiltakCode_TILTAK_CODE_ARBEID_DELTID:          "Arbeid på deltid",
	nirv1.TiltakCode_TILTAK_CODE_ANNET:                  "Annet",
}

var absenceLabels = map[nirv1.AbsenceType]string{
	nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_GYLDIG:            "Gyldig fravær",
	nirv1.AbsenceType_ABSENCE_TYPE_FRAVAER_UGYLDIG:           "Ugyldig fravær",
	nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_FODSEL_ADOPSJON: "Permisjon ved fødsel eller adopsjon",
	nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_SYKDOM:          "Permisjon ved sykdom",
	nirv1.AbsenceType_ABSENCE_TYPE_PERMISJON_ANNET:           "Annen godkjent permisjon",
}

var programmeLabels = map[nirv1.Programme]string{
	nirv1.Programme_PROGRAMME_INTRO:      "Introduksjonsprogrammet",
	nirv1.Programme_PROGRAMME_OPPLAERING: "Opplæring i norsk og samfunnskunnskap",
}

var schemeLabels = map[nirv1.TrainingScheme]string{
	nirv1.TrainingScheme_TRAINING_SCHEME_RETT_OG_PLIKT: "Rett og plikt",
	nirv1.TrainingScheme_TRAINING_SCHEME_PLIKT:         "Plikt",
	nirv1.TrainingScheme_TRAINING_SCHEME_RETT_6A:       "Rett til norsk (6A)",
	nirv1.TrainingScheme_TRAINING_SCHEME_UTVIDET_6A:    "Utvidet opplæring (6A)",
}

var categoryLabels = map[nirv1.Scheme]string{
	nirv1.Scheme_SCHEME_RETT_OG_PLIKT: "Rett og plikt",
	nirv1.Scheme_SCHEME_PLIKT:         "Plikt",
	nirv1.Scheme_SCHEME_RETT:          "Rett",
	nirv1.Scheme_SCHEME_KAN_TILBYS:    "Kan tilbys",
	nirv1.Scheme_SCHEME_NONE:          "Ikke i målgruppen",
}

var cefrLabels = map[nirv1.CefrLevel]string{
	nirv1.CefrLevel_CEFR_LEVEL_A1:                  "A1",
	nirv1.CefrLevel_CEFR_LEVEL_A2:                  "A2",
	nirv1.CefrLevel_CEFR_LEVEL_B1:                  "B1",
	nirv1.CefrLevel_CEFR_LEVEL_B2:                  "B2",
	nirv1.CefrLevel_CEFR_LEVEL_C1:                  "C1",
	nirv1.CefrLevel_CEFR_LEVEL_C1_PROVE_KARAKTER_2: "C1 (norskprøve med karakter 2)",
}

var hoursLabels = map[nirv1.HoursType]string{
	nirv1.HoursType_HOURS_TYPE_NORSK:                    "Norsk",
	nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_1: "Samfunnskunnskap, modul 1",
	nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_2: "Samfunnskunnskap, modul 2",
	nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_3: "Samfunnskunnskap, modul 3",
	nirv1.HoursType_HOURS_TYPE_SAMFUNNSKUNNSKAP:         "Samfunnskunnskap (før moduler)",
}

var vedtakLabels = map[nirv1.ProgrammeVedtakType]string{
	nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_TILDELING: "Tildeling",
	nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_AVSLAG:    "Avslag",
	nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_STANS:     "Stans",
	nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_PERMISJON: "Permisjon",
	nirv1.ProgrammeVedtakType_PROGRAMME_VEDTAK_TYPE_UTVIDELSE: "Utvidelse",
}

var trainingVedtakLabels = map[nirv1.TrainingVedtakType]string{
	nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_TILDELING: "Tildeling",
	nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_AVSLAG:    "Avslag",
	nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_STANS:     "Stans",
	nirv1.TrainingVedtakType_TRAINING_VEDTAK_TYPE_PERMISJON: "Permisjon",
}

var deadlineKindLabels = map[nirv1.DeadlineKind]string{
	nirv1.DeadlineKind_DEADLINE_KIND_NORSK:            "Gjennomføringsfrist for opplæring i norsk",
	nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_END:    "Introduksjonsprogrammets seneste sluttdato",
	nirv1.DeadlineKind_DEADLINE_KIND_TRAINING_START:   "Oppstart i opplæring innen 3 måneder",
	nirv1.DeadlineKind_DEADLINE_KIND_PROGRAMME_START:  "Oppstart i introduksjonsprogram innen 3 måneder",
	nirv1.DeadlineKind_DEADLINE_KIND_ANNUAL_REPORTING: "Ajourføring av årets data",
}

var deadlineStateLabels = map[nirv1.DeadlineState]string{
	nirv1.DeadlineState_DEADLINE_STATE_OK:             "I rute",
	nirv1.DeadlineState_DEADLINE_STATE_DUE_SOON:       "Forfaller snart",
	nirv1.DeadlineState_DEADLINE_STATE_OVERDUE:        "Overskredet",
	nirv1.DeadlineState_DEADLINE_STATE_COMPLETED:      "Fullført",
	nirv1.DeadlineState_DEADLINE_STATE_CANNOT_COMPUTE: "Kan ikke beregnes",
}

// eventKindLabels names the payloads of the audit history (the oneof field names).
var eventKindLabels = map[string]string{
	"person_registered":                    "Person registrert",
	"person_moved":                         "Flytting",
	"demand_registered":                    "Krav",
	"offer_registered":                     "Tilbud",
	"programme_vedtak_registered":          "Vedtak om introduksjonsprogram",
	"sluttmal_registered":                  "Sluttmål",
	"integreringskontrakt_registered":      "Integreringskontrakt",
	"tiltak_registered":                    "Tiltak",
	"absence_registered":                   "Fravær eller permisjon",
	"termination_registered":               "Avslutning",
	"termination_computed":                 "Avslutning beregnet av regelmotoren",
	"computed_termination_deleted":         "Beregnet avslutning slettet",
	"training_vedtak_registered":           "Vedtak om opplæring",
	"utdanningsbakgrunn_registered":        "Utdanningsbakgrunn",
	"norskmal_registered":                  "Norskmål",
	"training_hours_registered":            "Timer",
	"full_time_upper_secondary_registered": "Fulltid videregående opplæring",
	"reception_participation_registered":   "Opplæring eller kvalifisering i mottak",
	"exemption_registered":                 "Fritak",
	"event_retracted":                      "Tilbaketrekking",
	"identifier_added":                     "Nytt identifikasjonsnummer",
	"identifier_claimed":                   "Identifikasjonsnummer knyttet til personen",
	"persons_merged":                       "Personer slått sammen",
	"person_merged_into":                   "Slått sammen med en annen person",
}

var correctionLabels = map[string]string{
	"retracted":    "trukket tilbake",
	"restored":     "gjenopprettet",
	"deleted":      "slettet",
	"reason_added": "årsak lagt til",
}

var actorRoleLabels = map[nirv1.ActorRole]string{
	nirv1.ActorRole_ACTOR_ROLE_KOMMUNE:  "kommune",
	nirv1.ActorRole_ACTOR_ROLE_ANALYST:  "analytiker",
	nirv1.ActorRole_ACTOR_ROLE_OPERATOR: "drift",
	nirv1.ActorRole_ACTOR_ROLE_SYSTEM:   "regelmotor/system",
}

// label returns the label of an enum value, or its name when the map has none (a value
// added to the schema after this table).
func label[E interface {
	comparable
	String() string
}](m map[E]string, v E) string {
	if s, ok := m[v]; ok {
		return s
	}
	var zero E
	if v == zero {
		return ""
	}
	return v.String()
}

// options lists an enum's labelled values in schema order, with the enum's prefix cut from
// each value.
func options[E interface {
	comparable
	protoreflect.Enum
}](m map[E]string, prefix string) []option {
	var zero E
	vals := zero.Descriptor().Values()
	out := make([]option, 0, len(m))
	for i := 0; i < vals.Len(); i++ {
		n := vals.Get(i).Number()
		for k, l := range m {
			if k.Number() == n {
				out = append(out, option{Value: strings.TrimPrefix(string(vals.Get(i).Name()), prefix), Label: l})
			}
		}
	}
	return out
}

// pageFilters reads a page's filter parameters and keeps the first refusal: an unknown
// value, a look-alike (ıl) or an enum's UNSPECIFIED name is refused naming the field, the
// parameter and the values it takes; before 2026-12-07 such a value read as no filter (every
// person). An empty value is no filter.
type pageFilters struct {
	q       url.Values
	refusal string // the page's alert; "" when every value is taken
}

// enum reads an enum name without its prefix, as the page's options write it, in any ASCII
// case (rules.ParseEnum), and returns its number and its option value; 0 and "" for none.
func (f *pageFilters) enum(values map[string]int32, prefix, param, lbl string) (int32, string) {
	n, err := rules.ParseEnum(values, prefix, strings.TrimSpace(f.q.Get(param)))
	if err != nil {
		f.refuse(lbl, param, rules.EnumNames(values, prefix))
		return 0, ""
	}
	return n, rules.EnumName(values, prefix, n)
}

// choice reads one of a few lower-case ASCII values, in any ASCII case; "" for none.
func (f *pageFilters) choice(param, lbl string, choices ...string) string {
	v := rules.FoldASCII(strings.TrimSpace(f.q.Get(param)), strings.ToLower)
	if v != "" && !slices.Contains(choices, v) {
		f.refuse(lbl, param, choices)
		return ""
	}
	return v
}

func (f *pageFilters) refuse(lbl, param string, values []string) {
	if f.refusal != "" {
		return
	}
	list := values[len(values)-1]
	if len(values) > 1 {
		list = strings.Join(values[:len(values)-1], ", ") + " eller " + list
	}
	f.refusal = fmt.Sprintf("Ugyldig verdi: %s. Gyldige verdier for %s: %s; tomt for alle.", lbl, param, list)
}

// osloLocation is the register's calendar.
func osloLocation() *time.Location { return rules.Norway }

var monthNames = [...]string{"januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober", "november", "desember"}

// dateText writes a date as Norwegians read it: 28.02.2025; "" for none.
func dateText(d *nirv1.Date) string {
	dt, ok := rules.DateOf(d)
	if !ok {
		return ""
	}
	return rdateText(dt)
}

func rdateText(d rules.Date) string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%02d.%02d.%04d", d.D, int(d.M), d.Y)
}

// longDate writes 28. februar 2025.
func longDate(d rules.Date) string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d. %s %d", d.D, monthNames[d.M-1], d.Y)
}

// isoDate writes a date as a form's date input wants it: 2025-02-28.
func isoDate(d rules.Date) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

// number writes an integer with a non-breaking thin space between thousands (12 345).
func number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteString("−")
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u00a0")
		}
		b.WriteRune(c)
	}
	return b.String()
}

// decimal writes a number of hours with a decimal comma: 40,25.
func decimal(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s) > i+3 {
		s = strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strings.Replace(s, ".", ",", 1)
}

// percent writes a share as a whole percentage: 52 %.
func percent(share float64) string {
	return strconv.FormatFloat(share*100, 'f', 0, 64) + "\u00a0%"
}

// kommuneName returns "0301 Oslo" for a kommunenummer valid on the date (its latest name
// otherwise); the bare number when the table does not know it.
func kommuneName(nr string, on rules.Date) string {
	if k, err := rules.LookupKommune(nr, on); err == nil {
		return k.Name
	}
	if ps, err := rules.KommunePeriods(nr); err == nil && len(ps) > 0 {
		return ps[len(ps)-1].Name
	}
	return ""
}

// fylkeName returns the fylke's name for a fylkesnummer valid on the date (its latest name
// otherwise: 30 is Viken in 2025 too), "" when the table does not know it.
func fylkeName(nr string, on rules.Date) string {
	if f, err := rules.LookupFylke(nr, on); err == nil {
		return f.Name
	}
	if ps, err := rules.FylkePeriods(nr); err == nil && len(ps) > 0 {
		return ps[len(ps)-1].Name
	}
	return ""
}

var receptionLabels = map[nirv1.ReceptionActivity]string{
	nirv1.ReceptionActivity_RECEPTION_ACTIVITY_NORSK:                 "Opplæring i norsk for asylsøkere",
	nirv1.ReceptionActivity_RECEPTION_ACTIVITY_SAMFUNNSKUNNSKAP:      "Samfunnskunnskap for asylsøkere",
	nirv1.ReceptionActivity_RECEPTION_ACTIVITY_KOMPETANSEKARTLEGGING: "Kompetansekartlegging i mottak",
	nirv1.ReceptionActivity_RECEPTION_ACTIVITY_FORELDREVEILEDNING:    "Foreldreveiledning",
	nirv1.ReceptionActivity_RECEPTION_ACTIVITY_LIVSMESTRING:          "Livsmestring",
	nirv1.ReceptionActivity_RECEPTION_ACTIVITY_ANNET:                 "Annet integreringsfremmende tiltak",
}

var idTypeLabels = map[nirv1.IdentifierType]string{
	nirv1.IdentifierType_IDENTIFIER_TYPE_FODSELSNUMMER: "Fødselsnummer",
	nirv1.IdentifierType_IDENTIFIER_TYPE_D_NUMMER:      "D-nummer",
	nirv1.IdentifierType_IDENTIFIER_TYPE_DUF_NUMMER:    "DUF-nummer",
}

var exemptionLabels = map[nirv1.ExemptionType]string{
	nirv1.ExemptionType_EXEMPTION_TYPE_OPPLAERING: "Fritak fra plikten til opplæring",
	nirv1.ExemptionType_EXEMPTION_TYPE_PROVE:      "Fritak fra plikten til å avlegge prøver",
}

var permitLabels = map[nirv1.PermitBasis]string{
	nirv1.PermitBasis_PERMIT_BASIS_ASYL_28:                  "Asyl (utl. § 28)",
	nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34: "Kollektiv beskyttelse (utl. § 34)",
	nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35:            "Overføringsflyktning (utl. § 35)",
	nirv1.PermitBasis_PERMIT_BASIS_HUMANITAER_38:            "Sterke menneskelige hensyn (utl. § 38)",
	nirv1.PermitBasis_PERMIT_BASIS_BEGRENSET_38_5:           "Begrenset tillatelse (utl. § 38 femte ledd)",
	nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_FLYKTNING:        "Familieinnvandring med flyktning",
	nirv1.PermitBasis_PERMIT_BASIS_SELVSTENDIG_53:           "Selvstendig tillatelse (utl. § 53)",
	nirv1.PermitBasis_PERMIT_BASIS_ARBEID:                   "Arbeidsinnvandrer utenfor EØS/EFTA",
	nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_ARBEID:           "Familie til arbeidsinnvandrer",
	nirv1.PermitBasis_PERMIT_BASIS_ANNET_PERMANENT:          "Annen tillatelse (permanent opphold)",
}

var terminationRuleLabels = map[nirv1.TerminationRule]string{
	nirv1.TerminationRule_TERMINATION_RULE_FRIST_UTLOPT: "fristen for programmet er utløpt",
	nirv1.TerminationRule_TERMINATION_RULE_FLYTTET:      "flyttet til annen kommune",
	nirv1.TerminationRule_TERMINATION_RULE_STANS:        "stans uten registrert avslutningsårsak innen 30 dager",
	nirv1.TerminationRule_TERMINATION_RULE_INAKTIV:      "ingen registreringer på 12 måneder",
}
