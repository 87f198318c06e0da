package messaging_test

import (
	"testing"

	"github.com/aura-clinic/aura/schema/dbtest"
)

// TestMain gives the package's tests a fresh migrated database (dbtest.Pool).
func TestMain(m *testing.M) { dbtest.Main(m) }
