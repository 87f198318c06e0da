// Package faulttest helps tests check application errors.
package faulttest

import (
	"testing"

	"github.com/aura-clinic/aura/actors/fault"
)

// FieldCodes returns the pointer → code map of a validation error, failing
// the test when err is not one.
func FieldCodes(t testing.TB, err error) map[string]string {
	t.Helper()
	if !fault.HasCode(err, fault.ErrValidation) {
		t.Fatalf("error = %v, want validation_failed", err)
	}
	codes := map[string]string{}
	for _, f := range fault.From(err).Fields {
		codes[f.Pointer] = f.Code
	}
	return codes
}
