package web

import (
	"net/url"
	"strings"
	"testing"
)

// TestNewPager_NextWhileTokenSaysMore: a page read by «Neste side» (etter) whose side number
// is past the pages the shrunk total makes (rows before the place were removed since the
// page before) still links to the next page while the API says there is one: without the
// link the rows after it are never reached by «Neste side». Before, page >= Pages hid it.
func TestNewPager_NextWhileTokenSaysMore(t *testing.T) {
	g := newPager("/personer", url.Values{}, 2, 10, 20, 10, "t1.abc")
	if !strings.Contains(g.Next, "etter=t1.abc") {
		t.Errorf("page 2 of 20 rows, the API's next token t1.abc: Next %q, want a link carrying it", g.Next)
	}
	if g := newPager("/personer", url.Values{}, 2, 10, 20, 10, ""); g.Next != "" {
		t.Errorf("the last page without a next token: Next %q, want none", g.Next)
	}
}
