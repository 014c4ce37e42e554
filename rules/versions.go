package rules

import (
	"fmt"
	"strings"
	"time"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// Version is one version of one rule, valid for effective dates in [ValidFrom, ValidTo). A law
// change is a new Version appended to the rule's table, never an edit of an old one, so that
// replaying 2022 applies 2022's rules (DOMAIN.md 0: "keep every rule data-driven and versioned
// by validity dates").
type Version struct {
	// ID names the version in refusals, statuses and computed events, e.g.
	// "norskfrist-il/2023-08-01".
	ID string
	// Rule is the rule's stable name, e.g. "norskfrist-il".
	Rule string
	// Section is the DOMAIN.md section the rule implements.
	Section string
	// ValidFrom is the first effective date the version applies to (inclusive).
	ValidFrom Date
	// ValidTo is the first effective date it no longer applies to; zero means open.
	ValidTo Date
	// Summary says in one line (English) what the version does.
	Summary string
}

// Covers reports whether the version applies to effective date d.
func (v Version) Covers(d Date) bool {
	if d.Before(v.ValidFrom) {
		return false
	}
	return v.ValidTo.IsZero() || d.Before(v.ValidTo)
}

// versioned is a rule-version table entry: a Version plus the rule's parameters.
type versioned interface{ version() Version }

func (v Version) version() Version { return v }

// pick returns the entry of table whose validity covers d. Tables are ordered by ValidFrom and
// do not overlap; a date before the first entry gets the first entry (the oldest rule known),
// so a historical registration is judged by the oldest rule rather than by none.
func pick[T versioned](table []T, d Date) T {
	for _, e := range table {
		if e.version().Covers(d) {
			return e
		}
	}
	if len(table) > 0 && d.Before(table[0].version().ValidFrom) {
		return table[0]
	}
	return table[len(table)-1]
}

// coverage returns a note, in Norwegian and English, when version v is applied to date on
// although it does not cover it: on lies before the first version of the rule's table, and
// pick applied the oldest version known (DOMAIN.md 0: rules are versioned by validity dates,
// so an explanation must say which rule applied then). Empty when v covers on or on is
// unknown.
func coverage(v Version, on Date) (nb, en string) {
	if on.IsZero() || v.ID == "" || v.Covers(on) {
		return "", ""
	}
	return fmt.Sprintf("regelversjon %s gjelder fra %s; brukt for %s fordi ingen eldre versjon er kjent", v.ID, v.ValidFrom, on),
		fmt.Sprintf("rule version %s is valid from %s; applied to %s as no older version is known", v.ID, v.ValidFrom, on)
}

// ymd is MustDate for the version tables.
func ymd(y int, m time.Month, day int) Date { return MustDate(y, m, day) }

// Rule names (stable; they appear in refusals, statuses and computed terminations).
const (
	RuleLaw                 = "lovvalg"
	RuleIntroScheme         = "malgruppe-intro"
	RuleTrainingScheme      = "malgruppe-opplaering"
	RuleNorskDeadlineIL     = "norskfrist-il"
	RuleNorskDeadline6A     = "norskfrist-6a"
	RuleUtvidet6A           = "utvidet-opplaering-6a"
	RuleProgrammeEnd        = "programtid"
	RuleTrainingStart       = "oppstart-opplaering-3-mnd"
	RuleProgrammeStart      = "oppstart-intro-3-mnd"
	RuleAnnualReporting     = "ajourforingsfrist"
	RuleSamfunnskunnskap    = "timer-samfunnskunnskap"
	RuleTerminationDeadline = "avslutning-frist-utlopt"
	RuleTerminationMoved    = "avslutning-flyttet"
	RuleTerminationStans    = "avslutning-stans"
	RuleTerminationInactive = "avslutning-inaktiv"
)

// lawVersion holds the parameters of the lovvalg rule (DOMAIN.md 1.1, Product decisions 2).
type lawVersion struct {
	Version
	// ILFrom: permit or arrival on or after this date gives integreringsloven.
	ILFrom Date
	// SixAFrom and SixATo bound the permit dates of § 34 permits covered by chapter 6A
	// (SixATo zero: no 6A in this version).
	SixAFrom, SixATo Date
}

// lawVersions select by the permit date. 6A covers § 34 permits granted from 2022-03-11
// "while 6A is in force" (DOMAIN.md 1.1): the temporary chapter is currently valid until
// 2026-07-01; a prolongation is a new version with a later SixATo.
var lawVersions = []lawVersion{
	{
		Version: Version{ID: RuleLaw + "/1900-01-01", Rule: RuleLaw, Section: "DOMAIN.md 1.1",
			ValidFrom: ymd(1900, 1, 1), ValidTo: ymd(2022, 3, 11),
			Summary: "IntroL if permit and arrival before 2021-01-01, else IL (in force 2021-01-01)"},
		ILFrom: ymd(2021, 1, 1),
	},
	{
		Version: Version{ID: RuleLaw + "/2022-03-11", Rule: RuleLaw, Section: "DOMAIN.md 1.1",
			ValidFrom: ymd(2022, 3, 11),
			Summary:   "§ 34 permits granted 2022-03-11 to 2026-06-30 are IL chapter 6A"},
		ILFrom: ymd(2021, 1, 1), SixAFrom: ymd(2022, 3, 11), SixATo: ymd(2026, 7, 1),
	},
}

// introSchemeVersion holds the age limits of the introduction programme target group.
type introSchemeVersion struct {
	Version
	MinAge, MaxAge int
}

// introSchemeVersions select by the permit date (DOMAIN.md 1.2, 1.4). Prop. 81 L (2024–2025)
// proposes 60 as upper age; it becomes a new version when in force (DOMAIN.md 9.5).
var introSchemeVersions = []introSchemeVersion{
	{Version: Version{ID: RuleIntroScheme + "/2004-09-01", Rule: RuleIntroScheme, Section: "DOMAIN.md 1.2, 1.4, 1.5",
		ValidFrom: ymd(2004, 9, 1), Summary: "rett og plikt 18–55 at permit date; over 55 or settled without agreement: kan tilbys; 6A: rett"},
		MinAge: 18, MaxAge: 55},
}

// trainingSchemeVersion holds the age limits of the opplæring target group.
type trainingSchemeVersion struct {
	Version
	// IntroLMinAge..IntroLMaxAge is the IntroL target group; IntroLPliktMaxAge is the upper age
	// of rett og plikt (above it, up to IntroLMaxAge, only rett).
	IntroLMinAge, IntroLPliktMaxAge, IntroLMaxAge int
	ILMinAge, ILMaxAge                            int
}

// trainingSchemeVersions select by the permit date. From 2017-01-01 IntroL plikt was extended
// to 55–67 (DOMAIN.md 1.4).
var trainingSchemeVersions = []trainingSchemeVersion{
	{Version: Version{ID: RuleTrainingScheme + "/2005-09-01", Rule: RuleTrainingScheme, Section: "DOMAIN.md 1.3, 1.4",
		ValidFrom: ymd(2005, 9, 1), ValidTo: ymd(2017, 1, 1), Summary: "IntroL 16–55 rett og plikt (plikt only: 16–55), 55–67 rett; IL 18–67"},
		IntroLMinAge: 16, IntroLPliktMaxAge: 55, IntroLMaxAge: 67, ILMinAge: 18, ILMaxAge: 67},
	{Version: Version{ID: RuleTrainingScheme + "/2017-01-01", Rule: RuleTrainingScheme, Section: "DOMAIN.md 1.3, 1.4",
		ValidFrom: ymd(2017, 1, 1), Summary: "IntroL 16–67 rett og plikt; IL 18–67"},
		IntroLMinAge: 16, IntroLPliktMaxAge: 67, IntroLMaxAge: 67, ILMinAge: 18, ILMaxAge: 67},
}

// norskILVersion holds the IL norsk deadline (gjennomføringsfrist) parameters.
type norskILVersion struct {
	Version
	// StartFromOffer: the deadline runs from tilbud om oppstart; otherwise from the date rett
	// og plikt arose.
	StartFromOffer      bool
	MonthsVgo, MonthsNo int
}

// norskILVersions select by the deadline's start date: the date of tilbud om oppstart if one is
// registered, else the date rett og plikt arose (DOMAIN.md 3.2, Product decisions 3; Prop. 73 L
// (2022–2023) in force 2023-08-01).
var norskILVersions = []norskILVersion{
	{Version: Version{ID: RuleNorskDeadlineIL + "/2021-01-01", Rule: RuleNorskDeadlineIL, Section: "DOMAIN.md 3.2, Product decisions 3",
		ValidFrom: ymd(2021, 1, 1), ValidTo: ymd(2023, 8, 1), Summary: "from the date rett og plikt arose: 18 months with vgo, else 3 years, plus leave"},
		MonthsVgo: 18, MonthsNo: 36},
	{Version: Version{ID: RuleNorskDeadlineIL + "/2023-08-01", Rule: RuleNorskDeadlineIL, Section: "DOMAIN.md 3.2, Product decisions 3",
		ValidFrom: ymd(2023, 8, 1), Summary: "from tilbud om oppstart: 18 months with vgo, else 3 years, plus leave"},
		StartFromOffer: true, MonthsVgo: 18, MonthsNo: 36},
}

// norsk6AVersion holds the 6A norsk deadline and utvidet opplæring parameters.
type norsk6AVersion struct {
	Version
	Months int
	// UtvidetMonths is the length added per utvidet vedtak; UtvidetMaxVgo and UtvidetMaxNo the
	// number of utvidet vedtak accepted with and without vgo (0: no utvidet opplæring).
	UtvidetMonths               int
	UtvidetMaxVgo, UtvidetMaxNo int
	UtvidetWindowMonths         int
}

// norsk6AVersions select by the start date of the first 6A training vedtak (DOMAIN.md 1.5, 3.2;
// utvidet opplæring IF § 43 g from 2023-07-01).
var norsk6AVersions = []norsk6AVersion{
	{Version: Version{ID: RuleNorskDeadline6A + "/2022-06-15", Rule: RuleNorskDeadline6A, Section: "DOMAIN.md 3.2, Product decisions 3",
		ValidFrom: ymd(2022, 6, 15), ValidTo: ymd(2023, 7, 1), Summary: "12 months from the first 6A vedtak start, plus leave"},
		Months: 12},
	{Version: Version{ID: RuleNorskDeadline6A + "/2023-07-01", Rule: RuleNorskDeadline6A, Section: "DOMAIN.md 3.2, Product decisions 3",
		ValidFrom: ymd(2023, 7, 1), Summary: "12 months plus leave, plus 6 months per utvidet vedtak (at most 1 with vgo, 4 without)"},
		Months: 12, UtvidetMonths: 6, UtvidetMaxVgo: 1, UtvidetMaxNo: 4, UtvidetWindowMonths: 2},
}

// programmeEndVersion holds the programme length parameters.
type programmeEndVersion struct {
	Version
	// IntroLMonths and IntroLMaxExtension: IntroL § 5; IntroLCap is what NIR holds at most
	// (covid programmes beyond it are terminated at the cap, DOMAIN.md 1.6).
	IntroLMonths, IntroLMaxExtension, IntroLCap int
	// LeaveExtends: approved leave is not programme time, so it moves the latest end date,
	// under both laws (DOMAIN.md 2.6; Product decisions 12: decided, no longer an inference).
	LeaveExtends bool
}

var programmeEndVersions = []programmeEndVersion{
	{Version: Version{ID: RuleProgrammeEnd + "/2004-09-01", Rule: RuleProgrammeEnd, Section: "DOMAIN.md 2.2, 1.4, 1.6, Product decisions 4, 12",
		ValidFrom: ymd(2004, 9, 1), Summary: "IL: start + sluttmål maximum + registered extension; IntroL: 2 years + up to 1 year, at most 3 years; plus approved leave"},
		IntroLMonths: 24, IntroLMaxExtension: 12, IntroLCap: 36, LeaveExtends: true},
}

// sluttmalLimit is one row of the IL sluttmål table (DOMAIN.md 2.2): the ordinary maximum and
// the extension in months, and the deltakergruppe by utdanningsbakgrunn: Vgo is true for the
// sluttmål of participants with upper secondary education from before (høyere utdanning or
// arbeid, 3–6 months), false for those of participants without it (fullføre videregående,
// arbeid for other participants, grunnskole, deler av videregående).
type sluttmalLimit struct {
	Months, Extension int
	Vgo               bool
}

// sluttmalLimits is the IL table of ordinary maximum and extension per sluttmål (DOMAIN.md 2.2).
var sluttmalLimits = map[int32]sluttmalLimit{
	1: {6, 6, true},    // SLUTTMAL_HOYERE_UTDANNING
	2: {6, 6, true},    // SLUTTMAL_ARBEID_VGO
	3: {36, 12, false}, // SLUTTMAL_FULLFORT_VGO
	4: {24, 12, false}, // SLUTTMAL_ARBEID
	5: {24, 12, false}, // SLUTTMAL_GRUNNSKOLE
	6: {24, 12, false}, // SLUTTMAL_VGO_DELER
}

// RuleSluttmalGroup names the rule tying a sluttmål to the deltakergruppe of the registered
// utdanningsbakgrunn (DOMAIN.md 2.2, Product decisions 10).
const RuleSluttmalGroup = "sluttmal-deltakergruppe"

// sluttmalGroupVersion is the rule's only version: sluttmål exist from integreringsloven.
var sluttmalGroupVersion = Version{ID: RuleSluttmalGroup + "/2021-01-01", Rule: RuleSluttmalGroup, Section: "DOMAIN.md 2.2, Product decisions 10",
	ValidFrom: ymd(2021, 1, 1), Summary: "a sluttmål belongs to the deltakergruppe of the registered utdanningsbakgrunn; a contradiction is refused, or makes the programme end not computable until corrected"}

// contradictionText holds, per sluttmål, the reason in Norwegian and English that it
// contradicts the registered utdanningsbakgrunn, and the same with what the kommune must do
// (built once: the fold asks often).
var contradictionText = func() map[int32][4]string {
	out := map[int32][4]string{}
	for sm, lim := range sluttmalLimits {
		name := strings.TrimPrefix(nirv1.Sluttmal(sm).String(), "SLUTTMAL_")
		groupNB, groupEN := "deltakere uten videregående opplæring fra før", "participants without upper secondary education from before"
		utdNB, utdEN := "fullført videregående opplæring", "upper secondary completed"
		if lim.Vgo {
			groupNB, groupEN = "deltakere med videregående opplæring fra før", "participants with upper secondary education from before"
			utdNB, utdEN = "ikke fullført videregående opplæring", "upper secondary not completed"
		}
		nb := fmt.Sprintf("sluttmål %s gjelder %s, men registrert utdanningsbakgrunn er %s", name, groupNB, utdNB)
		en := fmt.Sprintf("sluttmål %s is for %s, but the registered utdanningsbakgrunn is %s", name, groupEN, utdEN)
		out[sm] = [4]string{nb, en, nb + "; kommunen må rette sluttmålet eller utdanningsbakgrunnen",
			en + "; the kommune must correct the sluttmål or the utdanningsbakgrunn"}
	}
	return out
}()

// sluttmalContradiction reports whether sluttmål sm belongs to another deltakergruppe than
// the person's registered utdanningsbakgrunn, with the reason in Norwegian and English naming
// both (Product decisions 10). False when either is unknown, and outside integreringsloven
// proper: the deltakergruppe table is the IL's (DOMAIN.md 2.2), and under chapter 6A the
// utdanningsbakgrunn is registered only for utvidet opplæring (DOMAIN.md 3.2) while the
// programme is «arbeidsrettet» (1.5).
func sluttmalContradiction(s *State, sm nirv1.Sluttmal) (nb, en string, contradicts bool) {
	u := s.Training.Utdanningsbakgrunn
	if u == nil || s.Law != nirv1.Law_LAW_IL {
		return "", "", false
	}
	lim, known := sluttmalLimits[int32(sm)]
	if !known || lim.Vgo == *u {
		return "", "", false
	}
	m := contradictionText[int32(sm)]
	return m[0], m[1], true
}

// startVersion holds the "start within N months" rule (DOMAIN.md 1.2, 3.5, Product decisions 6).
type startVersion struct {
	Version
	Months int
}

// trainingStartVersions select by the date the 3 months count from, max(settlement in the
// kommune, krav). DOMAIN.md 3.5 cites the integreringsloven rule [C]; NIR's statistic
// «oppstart innen 3 måneder» (DOMAIN.md 3.5, S5) has one definition for every settlement it
// reports on (Product decisions 6), so settlements under introduksjonsloven, from the
// opplæring chapter's start in 2005, are measured the same way: that is the first version.
var trainingStartVersions = []startVersion{
	{Version: Version{ID: RuleTrainingStart + "/2005-09-01", Rule: RuleTrainingStart, Section: "DOMAIN.md 3.5, Product decisions 6",
		ValidFrom: ymd(2005, 9, 1), ValidTo: ymd(2021, 1, 1),
		Summary: "introduksjonsloven era: NIR's measure «oppstart innen 3 måneder», first training hours or vedtak start within 3 months of settlement or krav"},
		Months: 3},
	{Version: Version{ID: RuleTrainingStart + "/2021-01-01", Rule: RuleTrainingStart, Section: "DOMAIN.md 3.5, Product decisions 6",
		ValidFrom: ymd(2021, 1, 1), Summary: "integreringsloven: first training hours or vedtak start within 3 months of folkeregistrering in the kommune or krav"},
		Months: 3},
}

var programmeStartVersions = []startVersion{
	{Version: Version{ID: RuleProgrammeStart + "/2004-09-01", Rule: RuleProgrammeStart, Section: "DOMAIN.md 1.2",
		ValidFrom: ymd(2004, 9, 1), Summary: "programme start within 3 months of settlement or krav"},
		Months: 3},
}

// reportingVersion holds the annual ajourføring deadline (DOMAIN.md 6.3, Product decisions 7).
type reportingVersion struct {
	Version
	LastDayOfFebruary bool
	// Fixed is the deadline's month and day when not the last day of February.
	FixedMonth time.Month
	FixedDay   int
}

// reportingVersions select by the data year's first day: 15 January for 2016 and 2017 data,
// the last day of February from data year 2018.
var reportingVersions = []reportingVersion{
	{Version: Version{ID: RuleAnnualReporting + "/2016", Rule: RuleAnnualReporting, Section: "DOMAIN.md 6.3",
		ValidFrom: ymd(2016, 1, 1), ValidTo: ymd(2018, 1, 1), Summary: "data year Y closes 15 January Y+1"},
		FixedMonth: time.January, FixedDay: 15},
	{Version: Version{ID: RuleAnnualReporting + "/2018", Rule: RuleAnnualReporting, Section: "DOMAIN.md 6.3, Product decisions 7",
		ValidFrom: ymd(2018, 1, 1), Summary: "data year Y closes on the last day of February Y+1"},
		LastDayOfFebruary: true},
}

// samfunnskunnskapVersion holds the samfunnskunnskap hour goal (timemål).
type samfunnskunnskapVersion struct {
	Version
	Hours float64
	// Modules: hours are registered per module (HOURS_TYPE_SAMFUNNSKUNNSKAP_MODUL_1..3).
	Modules bool
	// Reception is the goal for an asylum seeker, whose samfunnskunnskap starts in reception
	// (0: none), and whose reception hours count toward Hours after the permit: one scheme
	// (DOMAIN.md 3.4, 5).
	Reception float64
}

// samfunnskunnskapVersions select by the month of the hours, or the training start: 50 hours
// from the opplæring chapter of introduksjonsloven (2005-09-01; 250 + 50 hours before 2012,
// 550 + 50 after, DOMAIN.md 1.4), 75 hours in three modules from 2022-01-01 (DOMAIN.md 3.4),
// which for an asylum seeker start in reception with a goal of 25 hours and continue after
// the permit as one scheme (DOMAIN.md 3.4, 5; before, reception had «norsk kultur og norske
// verdier», no samfunnskunnskap).
var samfunnskunnskapVersions = []samfunnskunnskapVersion{
	{Version: Version{ID: RuleSamfunnskunnskap + "/2005-09-01", Rule: RuleSamfunnskunnskap, Section: "DOMAIN.md 3.4, 1.4",
		ValidFrom: ymd(2005, 9, 1), ValidTo: ymd(2022, 1, 1), Summary: "samfunnskunnskap 50 hours"},
		Hours: 50},
	{Version: Version{ID: RuleSamfunnskunnskap + "/2022-01-01", Rule: RuleSamfunnskunnskap, Section: "DOMAIN.md 3.4",
		ValidFrom: ymd(2022, 1, 1), Summary: "samfunnskunnskap 75 hours in 3 modules"},
		Hours: 75, Modules: true, Reception: 25},
}

// terminationVersion holds a computed-termination rule (DOMAIN.md Product decisions 5).
type terminationVersion struct {
	Version
	// IntroLOnly: the rule fires only for IntroL participants.
	IntroLOnly bool
	// Days is how long after its date a computed termination waits for the kommune to register
	// the avslutningsårsak (the stans rule: 30 days; the inactivity rule: the notice period in
	// which the person list shows the person before the regelmotor acts).
	Days int
	// Months is the inactivity threshold: months without any registration.
	Months int
}

var terminationDeadlineVersions = []terminationVersion{
	{Version: Version{ID: RuleTerminationDeadline + "/2004-09-01", Rule: RuleTerminationDeadline, Section: "DOMAIN.md Product decisions 5a, 5",
		ValidFrom: ymd(2004, 9, 1), Summary: "IKKE_REGISTRERT at the programme's latest end date when it has passed with no termination"}},
}

var terminationMovedVersions = []terminationVersion{
	{Version: Version{ID: RuleTerminationMoved + "/2004-09-01", Rule: RuleTerminationMoved, Section: "DOMAIN.md Product decisions 5b, 7.4",
		ValidFrom: ymd(2004, 9, 1), Summary: "FLYTTET at the move date for an IntroL participant with an active programme who moves"},
		IntroLOnly: true},
}

// terminationStansVersions: a stans vedtak ends the programme on its date; with no
// avslutningsårsak registered within 30 days of it, the regelmotor computes «Avslutningsårsak
// ikke registrert» dated on the stans date (DOMAIN.md 2.5, 2.6, Product decisions 11).
var terminationStansVersions = []terminationVersion{
	{Version: Version{ID: RuleTerminationStans + "/2004-09-01", Rule: RuleTerminationStans, Section: "DOMAIN.md Product decisions 11, 2.5, 2.6",
		ValidFrom: ymd(2004, 9, 1), Summary: "a stans ends the programme on its date; IKKE_REGISTRERT dated on the stans date when no avslutningsårsak is registered within 30 days"},
		Days: 30},
}

// terminationInactiveVersions: a termination after a period with no registration for a
// participant with an open programme (DOMAIN.md Product decisions 5c, 5: NIR terminated
// participants after «long time between registrations», S22). The threshold is not public:
// 12 months is the product's default until IMDi confirms the figure; a confirmed figure is
// a new version. For Days after the threshold the person list shows the person under «ingen
// registreringer siste 12 måneder» before the regelmotor acts.
var terminationInactiveVersions = []terminationVersion{
	{Version: Version{ID: RuleTerminationInactive + "/2004-09-01", Rule: RuleTerminationInactive, Section: "DOMAIN.md Product decisions 5c, 5",
		ValidFrom: ymd(2004, 9, 1), Summary: "IKKE_REGISTRERT when nothing is registered for 12 months for an open programme (threshold to be confirmed by IMDi), 30 days after the person list shows it"},
		Months: 12, Days: 30},
}

// Versions returns every rule version the package knows, for documentation and for
// `nirctl rules explain`.
func Versions() []Version {
	var out []Version
	add := func(vs ...Version) { out = append(out, vs...) }
	for _, v := range lawVersions {
		add(v.Version)
	}
	for _, v := range introSchemeVersions {
		add(v.Version)
	}
	for _, v := range trainingSchemeVersions {
		add(v.Version)
	}
	for _, v := range norskILVersions {
		add(v.Version)
	}
	for _, v := range norsk6AVersions {
		add(v.Version)
	}
	for _, v := range programmeEndVersions {
		add(v.Version)
	}
	for _, v := range trainingStartVersions {
		add(v.Version)
	}
	for _, v := range programmeStartVersions {
		add(v.Version)
	}
	for _, v := range reportingVersions {
		add(v.Version)
	}
	for _, v := range samfunnskunnskapVersions {
		add(v.Version)
	}
	for _, v := range norskHoursVersions {
		add(v.Version)
	}
	for _, v := range terminationDeadlineVersions {
		add(v.Version)
	}
	for _, v := range terminationMovedVersions {
		add(v.Version)
	}
	for _, v := range terminationStansVersions {
		add(v.Version)
	}
	for _, v := range terminationInactiveVersions {
		add(v.Version)
	}
	add(checkVersions...)
	return out
}
