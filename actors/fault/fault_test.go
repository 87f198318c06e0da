package fault_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aura-clinic/aura/actors/fault"
)

var errSample = fault.Define("sample_error", fault.Conflict, "Sample")

// TestFieldsErrNilWhenEmpty proves that collecting no field errors yields a
// nil error (not a typed nil), so callers can return it directly.
func TestFieldsErrNilWhenEmpty(t *testing.T) {
	for _, f := range []fault.Fields{nil, {}} {
		if err := f.Err(); err != nil {
			t.Fatalf("Err() of empty Fields %#v = %v, want nil", f, err)
		}
	}
}

// TestFieldsErrListsEveryField proves that a non-empty Fields becomes a
// validation_failed error listing every field, in order.
func TestFieldsErrListsEveryField(t *testing.T) {
	var f fault.Fields
	f.Add("/a", "required", "is required")
	f.Add("/b", "too_long", "is too long")
	err := f.Err()
	if !fault.HasCode(err, fault.ErrValidation) {
		t.Fatalf("Err() = %v, want code validation_failed", err)
	}
	got := fault.From(err).Fields
	want := []fault.FieldError{
		{Pointer: "/a", Code: "required", Detail: "is required"},
		{Pointer: "/b", Code: "too_long", Detail: "is too long"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Fields = %+v, want %+v", got, want)
	}
	if fault.From(err).Code.Kind() != fault.Unprocessable {
		t.Errorf("kind = %v, want Unprocessable", fault.From(err).Code.Kind())
	}
}

// TestFromWrapsForeignErrors proves that From returns application errors as
// they are and turns any other error into internal_error that keeps the cause
// for logs but not in the client-facing detail.
func TestFromWrapsForeignErrors(t *testing.T) {
	app := errSample.New("detail")
	if got := fault.From(app); got != app {
		t.Errorf("From(app error) = %p, want the same *Error %p", got, app)
	}
	if got := fault.From(fmt.Errorf("context: %w", app)); got != app {
		t.Errorf("From(wrapped app error) did not unwrap to the *Error")
	}

	cause := errors.New("dial tcp: connection refused")
	got := fault.From(cause)
	if got.Code != fault.ErrInternal {
		t.Fatalf("From(foreign).Code = %q, want internal_error", got.Code.Name())
	}
	if !errors.Is(got, cause) || got.Cause != cause {
		t.Errorf("From(foreign) lost the cause: %v", got)
	}
	if strings.Contains(got.Detail, "connection refused") {
		t.Errorf("detail %q leaks the cause's text", got.Detail)
	}
}

// TestIsAndHasCodeMatchByCode proves that errors.Is and HasCode compare
// application errors by code, whatever their detail, through wrapping.
func TestIsAndHasCodeMatchByCode(t *testing.T) {
	other := fault.Define("other_error", fault.Conflict, "Other")
	err := fmt.Errorf("outer: %w", errSample.New("one detail"))
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"Is same code, other detail", errors.Is(err, errSample.New("another detail")), true},
		{"Is other code", errors.Is(err, other.New("one detail")), false},
		{"Is non-fault target", errors.Is(err, io.EOF), false},
		{"HasCode same code", fault.HasCode(err, errSample), true},
		{"HasCode other code", fault.HasCode(err, other), false},
		{"HasCode foreign error", fault.HasCode(io.EOF, fault.ErrInternal), false},
		{"HasCode nil", fault.HasCode(nil, errSample), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestErrorText proves the error string carries code, detail and cause, and
// that Errorf formats its detail.
func TestErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errSample.New(""), "sample_error"},
		{errSample.Errorf("n=%d", 3), "sample_error: n=3"},
		{errSample.Wrap(io.EOF, "read"), "sample_error: read: EOF"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if errSample.Name() != "sample_error" || errSample.Title() != "Sample" || errSample.Kind() != fault.Conflict {
		t.Errorf("Define did not keep name, title and kind: %+v", errSample)
	}
}

// TestLength proves Length's bounds are inclusive, count characters rather
// than bytes, and name the reason: required, too_short or too_long.
func TestLength(t *testing.T) {
	tests := []struct {
		name     string
		s        string
		min, max int
		want     string // the field error's code; "" for none
	}{
		{"empty and required", "", 1, 10, "required"},
		{"empty and optional", "", 0, 10, ""},
		{"at min", "ab", 2, 10, ""},
		{"below min", "a", 2, 10, "too_short"},
		{"at max", "abc", 1, 3, ""},
		{"above max", "abcd", 1, 3, "too_long"},
		{"multi-byte characters count once", "ñññ", 1, 3, ""},
		{"multi-byte above max", "ññññ", 1, 3, "too_long"},
		{"NUL no text column can store", "a\x00b", 0, 10, "invalid_characters"},
		{"invalid UTF-8", "a\xffb", 0, 10, "invalid_characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fault.Fields
			f.Length("/x", tt.s, tt.min, tt.max)
			switch {
			case tt.want == "" && len(f) != 0:
				t.Fatalf("Length(%q, %d, %d) = %+v, want no error", tt.s, tt.min, tt.max, f)
			case tt.want != "" && (len(f) != 1 || f[0].Code != tt.want || f[0].Pointer != "/x"):
				t.Fatalf("Length(%q, %d, %d) = %+v, want one %s error at /x", tt.s, tt.min, tt.max, f, tt.want)
			}
		})
	}
}
