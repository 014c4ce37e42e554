package rules

import (
	"fmt"
	"testing"
)

// TestIDBornOn_2032RuleNumberWithClassicControlDigits: NIR-R059 (Product decisions 15)
// compares an added id's DDMMYY with the person's birth date. Found on 2026-12-06 (review of
// NIR-R059): a fødselsnummer issued under the 2032 rule whose K1 remainder happens to be 0 (a
// quarter of them; ids.go: "valid under both rules") parses as classic, its individnummer gave
// a century the 2032 rule does not encode, and the person's own number was refused: born
// 1960-05-10, individnummer 600, read as 1860. Now only DDMMYY is compared.
func TestIDBornOn_2032RuleNumberWithClassicControlDigits(t *testing.T) {
	base := "100560600"
	var id string
	for k1 := 0; k1 <= 9 && id == ""; k1++ {
		s := 0
		for i, w := range fnrWeights1 {
			s += w * int(base[i]-'0')
		}
		if (s+k1)%11 != 0 {
			continue
		}
		p := base + fmt.Sprint(k1)
		s2 := 0
		for i, w := range fnrWeights2 {
			s2 += w * int(p[i]-'0')
		}
		k2 := (11 - s2%11) % 11
		if k2 == 10 {
			continue
		}
		id = p + fmt.Sprint(k2)
	}
	if id == "" {
		t.Fatal("no valid number for this base")
	}
	n, err := ParseNationalID(id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := n.BirthDate()
	if !idBornOn(id, MustDate(1960, 5, 10)) {
		t.Errorf("NIR-R059 refuses a valid number of a person born 1960-05-10 (DDMMYY 100560): read as born %v", b)
	}
}
