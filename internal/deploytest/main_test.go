package deploytest

import (
	"os"
	"testing"

	"github.com/introreg/nir/internal/nirdtest"
)

// TestMain removes the binaries nirdtest built for these tests when they end.
func TestMain(m *testing.M) {
	os.Exit(nirdtest.Main(m))
}
