package rules

import (
	"fmt"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// LawOf decides the act that covers a person (DOMAIN.md 1.1, Product decisions 2) and returns
// it with the rule version applied, selected by the permit date:
//
//	permit < 2021-01-01 and arrival < 2021-01-01          → introduksjonsloven
//	§ 34 permit granted 2022-03-11 .. (6A in force)      → integreringsloven kapittel 6A
//	otherwise                                             → integreringsloven
//
// An unknown arrival date counts as "before 2021" when the permit is (arrival usually precedes
// an asylum permit). Without a permit date the law is LAW_UNSPECIFIED.
func LawOf(p Person) (nirv1.Law, string) {
	if p.PermitDate.IsZero() {
		return nirv1.Law_LAW_UNSPECIFIED, ""
	}
	v := pick(lawVersions, p.PermitDate)
	arrivalBefore := p.ArrivalDate.IsZero() || p.ArrivalDate.Before(v.ILFrom)
	switch {
	case p.PermitDate.Before(v.ILFrom) && arrivalBefore:
		return nirv1.Law_LAW_INTROL, v.ID
	case p.PermitBasis == nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34 &&
		!v.SixATo.IsZero() && !p.PermitDate.Before(v.SixAFrom) && p.PermitDate.Before(v.SixATo):
		return nirv1.Law_LAW_IL_6A, v.ID
	default:
		return nirv1.Law_LAW_IL, v.ID
	}
}

// AgeOn returns the age in whole years on date on of a person born on birth; -1 if either is
// unknown.
func AgeOn(birth, on Date) int {
	if birth.IsZero() || on.IsZero() {
		return -1
	}
	age := on.Y - birth.Y
	if on.M < birth.M || (on.M == birth.M && on.D < birth.D) {
		age--
	}
	return age
}

// SchemeResult is a person's scheme for one programme, with the kategori label and why.
type SchemeResult struct {
	Programme nirv1.Programme
	Scheme    nirv1.Scheme
	Kategori  string
	ReasonNB  string
	ReasonEN  string
	Rule      string
	Section   string
	Version   string
}

// noteCoverage appends to the reason a note when version v does not cover the date on it was
// applied to.
func (r *SchemeResult) noteCoverage(v Version, on Date) {
	if nb, en := coverage(v, on); nb != "" {
		r.ReasonNB, r.ReasonEN = withNote(r.ReasonNB, nb), withNote(r.ReasonEN, en)
	}
}

// introBases are the permits that give the introduction programme (DOMAIN.md 1.2; IL § 27
// list for opplæring, without "other permanent").
func introBasis(b nirv1.PermitBasis) bool {
	switch b {
	case nirv1.PermitBasis_PERMIT_BASIS_ASYL_28,
		nirv1.PermitBasis_PERMIT_BASIS_KOLLEKTIV_BESKYTTELSE_34,
		nirv1.PermitBasis_PERMIT_BASIS_OVERFORING_35,
		nirv1.PermitBasis_PERMIT_BASIS_HUMANITAER_38,
		nirv1.PermitBasis_PERMIT_BASIS_BEGRENSET_38_5,
		nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_FLYKTNING,
		nirv1.PermitBasis_PERMIT_BASIS_SELVSTENDIG_53:
		return true
	}
	return false
}

// pliktOnlyBasis reports the permits with plikt but not rett to opplæring (IL § 28: labour
// immigrants from outside EEA/EFTA and their families; DOMAIN.md 1.3).
func pliktOnlyBasis(b nirv1.PermitBasis) bool {
	return b == nirv1.PermitBasis_PERMIT_BASIS_ARBEID || b == nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_ARBEID
}

// IntroScheme decides the person's scheme for the introduction programme (DOMAIN.md 1.2, 1.4,
// 1.5): age at the permit date decides.
func IntroScheme(p Person, law nirv1.Law) SchemeResult {
	r := introScheme(p, law)
	r.noteCoverage(pick(introSchemeVersions, p.PermitDate).Version, p.PermitDate)
	return r
}

func introScheme(p Person, law nirv1.Law) SchemeResult {
	v := pick(introSchemeVersions, p.PermitDate)
	r := SchemeResult{Programme: nirv1.Programme_PROGRAMME_INTRO, Rule: v.Rule, Section: v.Section, Version: v.ID}

	age := p.AgeAtPermit()
	none := func(nb, en string) SchemeResult {
		r.Scheme, r.Kategori, r.ReasonNB, r.ReasonEN = nirv1.Scheme_SCHEME_NONE, "Ikke i målgruppen for introduksjonsprogram", nb, en
		return r
	}
	switch {
	case law == nirv1.Law_LAW_UNSPECIFIED || age < 0:
		return none("mangler fødselsdato eller dato for oppholdstillatelse", "birth date or permit date missing")
	case !introBasis(p.PermitBasis):
		return none("oppholdsgrunnlaget gir ikke rett til introduksjonsprogram", "the permit basis gives no introduction programme")
	case age < v.MinAge:
		return none(fmt.Sprintf("under %d år ved vedtak om oppholdstillatelse", v.MinAge),
			fmt.Sprintf("under %d at the permit date", v.MinAge))
	}
	withoutAgreement := !p.SettledByAgreement &&
		p.PermitBasis != nirv1.PermitBasis_PERMIT_BASIS_FAMILIE_FLYKTNING &&
		p.PermitBasis != nirv1.PermitBasis_PERMIT_BASIS_SELVSTENDIG_53
	switch {
	case age > v.MaxAge:
		if law == nirv1.Law_LAW_INTROL {
			return none(fmt.Sprintf("over %d år ved vedtak om oppholdstillatelse", v.MaxAge),
				fmt.Sprintf("over %d at the permit date", v.MaxAge))
		}
		r.Scheme, r.Kategori = nirv1.Scheme_SCHEME_KAN_TILBYS, "Kan tilbys introduksjonsprogram"
		r.ReasonNB = fmt.Sprintf("over %d år ved vedtak om oppholdstillatelse, ellers i målgruppen", v.MaxAge)
		r.ReasonEN = fmt.Sprintf("over %d at the permit date, otherwise in the target group", v.MaxAge)
	case law == nirv1.Law_LAW_IL_6A:
		r.Scheme, r.Kategori = nirv1.Scheme_SCHEME_RETT, "Rett til introduksjonsprogram (kapittel 6A)"
		r.ReasonNB = "kollektiv beskyttelse etter kapittel 6A: rett, men ikke plikt"
		r.ReasonEN = "collective protection under chapter 6A: right, no duty"
	case withoutAgreement && law != nirv1.Law_LAW_INTROL:
		r.Scheme, r.Kategori = nirv1.Scheme_SCHEME_KAN_TILBYS, "Kan tilbys introduksjonsprogram"
		r.ReasonNB = "bosatt uten avtale med IMDi"
		r.ReasonEN = "settled without agreement with IMDi"
	default:
		r.Scheme, r.Kategori = nirv1.Scheme_SCHEME_RETT_OG_PLIKT, "Rett og plikt introduksjonsprogram"
		r.ReasonNB = fmt.Sprintf("%d–%d år ved vedtak om oppholdstillatelse, oppholdsgrunnlag i målgruppen", v.MinAge, v.MaxAge)
		r.ReasonEN = fmt.Sprintf("%d–%d at the permit date with a qualifying permit", v.MinAge, v.MaxAge)
	}
	return r
}

// TrainingScheme decides the person's scheme for opplæring i norsk og samfunnskunnskap
// (DOMAIN.md 1.3, 1.4, 1.5): age at the permit date decides; IL 18–67, IntroL 16–67 (55–67
// only rett before 2017, so nothing for plikt-only permits); § 28 permits give plikt only; 6A
// gives rett only.
func TrainingScheme(p Person, law nirv1.Law) SchemeResult {
	r := trainingScheme(p, law)
	r.noteCoverage(pick(trainingSchemeVersions, p.PermitDate).Version, p.PermitDate)
	return r
}

func trainingScheme(p Person, law nirv1.Law) SchemeResult {
	v := pick(trainingSchemeVersions, p.PermitDate)
	r := SchemeResult{Programme: nirv1.Programme_PROGRAMME_OPPLAERING, Rule: v.Rule, Section: v.Section, Version: v.ID}

	age := p.AgeAtPermit()
	none := func(nb, en string) SchemeResult {
		r.Scheme, r.Kategori, r.ReasonNB, r.ReasonEN = nirv1.Scheme_SCHEME_NONE, "Ikke i målgruppen for opplæring", nb, en
		return r
	}
	if law == nirv1.Law_LAW_UNSPECIFIED || age < 0 {
		return none("mangler fødselsdato eller dato for oppholdstillatelse", "birth date or permit date missing")
	}
	minAge, maxAge := v.ILMinAge, v.ILMaxAge
	if law == nirv1.Law_LAW_INTROL {
		minAge, maxAge = v.IntroLMinAge, v.IntroLMaxAge
	}
	if age < minAge || age > maxAge {
		return none(fmt.Sprintf("utenfor aldersgrensen %d–%d år ved vedtak om oppholdstillatelse", minAge, maxAge),
			fmt.Sprintf("outside the age limits %d–%d at the permit date", minAge, maxAge))
	}
	switch {
	case p.PermitBasis == nirv1.PermitBasis_PERMIT_BASIS_UNSPECIFIED:
		return none("mangler oppholdsgrunnlag", "permit basis missing")
	case law == nirv1.Law_LAW_IL_6A:
		r.Scheme, r.Kategori = nirv1.Scheme_SCHEME_RETT, "Rett til norsk"
		r.ReasonNB = "kollektiv beskyttelse etter kapittel 6A: rett, men ikke plikt (IL § 37 d); ordning «Norsk rett/norskmål»"
		r.ReasonEN = "collective protection under chapter 6A: right, no duty (IL § 37 d)"
	case law == nirv1.Law_LAW_INTROL && age > v.IntroLPliktMaxAge && pliktOnlyBasis(p.PermitBasis):
		// DOMAIN.md 1.4: before 2017 the plikt ended at 55 («from 1 Jan 2017 plikt extended to
		// 55–67»); above it only the rett remained, and a labour immigrant has no rett.
		return none(fmt.Sprintf("arbeidsinnvandrer %d–%d år ved vedtak om oppholdstillatelse før 2017: verken rett eller plikt", v.IntroLPliktMaxAge, maxAge),
			fmt.Sprintf("labour immigrant %d–%d at a permit date before 2017: neither right nor duty", v.IntroLPliktMaxAge, maxAge))
	case pliktOnlyBasis(p.PermitBasis):
		r.Scheme, r.Kategori = nirv1.Scheme_SCHEME_PLIKT, "Plikt til opplæring i norsk og samfunnskunnskap"
		r.ReasonNB = "arbeidsinnvandrer utenfor EØS/EFTA eller familie: plikt, ikke rett"
		r.ReasonEN = "labour immigrant from outside EEA/EFTA or family: duty, no right"
	case law == nirv1.Law_LAW_INTROL && age > v.IntroLPliktMaxAge:
		r.Scheme, r.Kategori = nirv1.Scheme_SCHEME_RETT, "Rett til opplæring i norsk og samfunnskunnskap (introduksjonsloven)"
		r.ReasonNB = fmt.Sprintf("%d–%d år ved vedtak om oppholdstillatelse før 2017: rett, ikke plikt", v.IntroLPliktMaxAge, maxAge)
		r.ReasonEN = fmt.Sprintf("%d–%d at a permit date before 2017: right, no duty", v.IntroLPliktMaxAge, maxAge)
	default:
		r.Scheme, r.Kategori = nirv1.Scheme_SCHEME_RETT_OG_PLIKT, "Rett og plikt til opplæring i norsk og samfunnskunnskap"
		r.ReasonNB = fmt.Sprintf("%d–%d år ved vedtak om oppholdstillatelse med oppholdsgrunnlag i målgruppen", minAge, maxAge)
		r.ReasonEN = fmt.Sprintf("%d–%d at the permit date with a qualifying permit", minAge, maxAge)
	}
	return r
}
