package crm_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault/faulttest"
)

// now is the fixed clock of these tests.
var now = time.Date(2024, 6, 15, 12, 0, 0, 0, time.UTC)

func str(s string) *string { return &s }

// decode reads a JSON body into PatientFields, as the edge does.
func decode(t *testing.T, body string) crm.PatientFields {
	t.Helper()
	var f crm.PatientFields
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return f
}

// newPatient creates a valid patient to update.
func newPatient(t *testing.T) crm.Patient {
	t.Helper()
	p, err := crm.NewPatient(uuid.New(), decode(t, `{
		"first_name": "Ana", "last_name": "López", "date_of_birth": "1990-05-17",
		"email": "ana@example.com", "phone": "+34 600 000 000", "notes": "allergic to penicillin"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNewPatientValid proves a valid body becomes a patient with trimmed
// names, a lower-cased email, cleared empty optionals and server-set id,
// clinic and timestamps.
func TestNewPatientValid(t *testing.T) {
	clinicID := uuid.New()
	p, err := crm.NewPatient(clinicID, decode(t, `{
		"first_name": "  Ana ", "last_name": "\tLópez", "date_of_birth": "1990-05-17",
		"email": " Ana.Lopez@Example.COM ", "phone": "", "notes": null}`), now)
	if err != nil {
		t.Fatal(err)
	}
	want := crm.Patient{
		ID: p.ID, ClinicID: clinicID, FirstName: "Ana", LastName: "López",
		DateOfBirth: str("1990-05-17"), Email: str("ana.lopez@example.com"),
		CreatedAt: now, UpdatedAt: now,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("patient = %+v\nwant      %+v", p, want)
	}
	if p.ID.Version() != 7 {
		t.Errorf("id %v is not a UUIDv7", p.ID)
	}
}

// TestNewPatientValidation proves each field's rule, one case at a time, and
// that every invalid field is reported with a JSON Pointer and a code.
func TestNewPatientValidation(t *testing.T) {
	const names = `"first_name": "Ana", "last_name": "López"`
	tests := []struct {
		name string
		body string
		want map[string]string // pointer → code; empty for a valid body
	}{
		{"names only", `{` + names + `}`, nil},
		{"no first name", `{"last_name": "López"}`, map[string]string{"/first_name": "required"}},
		{"null first name", `{"first_name": null, "last_name": "López"}`, map[string]string{"/first_name": "required"}},
		{"blank last name", `{"first_name": "Ana", "last_name": "   "}`, map[string]string{"/last_name": "required"}},
		{"no names at all", `{}`, map[string]string{"/first_name": "required", "/last_name": "required"}},
		{"first name of 100", `{"first_name": "` + strings.Repeat("ñ", 100) + `", "last_name": "L"}`, nil},
		{"first name of 101", `{"first_name": "` + strings.Repeat("a", 101) + `", "last_name": "L"}`, map[string]string{"/first_name": "too_long"}},
		{"NUL in a name", `{"first_name": "A\u0000na", "last_name": "L"}`, map[string]string{"/first_name": "invalid_characters"}},

		{"email", `{` + names + `, "email": "ana@example.com"}`, nil},
		{"bad email", `{` + names + `, "email": "ana-at-example.com"}`, map[string]string{"/email": "invalid_email"}},
		{"display-name email", `{` + names + `, "email": "Ana <ana@example.com>"}`, map[string]string{"/email": "invalid_email"}},

		{"phone with +, spaces", `{` + names + `, "phone": "+34 600 000 000"}`, nil},
		{"phone with ()./-", `{` + names + `, "phone": "(91) 555-12.34/5"}`, nil},
		{"phone of 3", `{` + names + `, "phone": "112"}`, nil},
		{"phone of 32", `{` + names + `, "phone": "` + strings.Repeat("1", 32) + `"}`, nil},
		{"phone of 2", `{` + names + `, "phone": "12"}`, map[string]string{"/phone": "invalid_phone"}},
		{"phone of 33", `{` + names + `, "phone": "` + strings.Repeat("1", 33) + `"}`, map[string]string{"/phone": "invalid_phone"}},
		{"phone with letters", `{` + names + `, "phone": "call me"}`, map[string]string{"/phone": "invalid_phone"}},
		{"phone with two +", `{` + names + `, "phone": "++34600"}`, map[string]string{"/phone": "invalid_phone"}},
		{"phone with + inside", `{` + names + `, "phone": "34+600"}`, map[string]string{"/phone": "invalid_phone"}},

		{"notes of 10000", `{` + names + `, "notes": "` + strings.Repeat("n", 10000) + `"}`, nil},
		{"notes of 10001", `{` + names + `, "notes": "` + strings.Repeat("n", 10001) + `"}`, map[string]string{"/notes": "too_long"}},
		{"NUL in notes", `{` + names + `, "notes": "a\u0000b"}`, map[string]string{"/notes": "invalid_characters"}},

		{"date of birth", `{` + names + `, "date_of_birth": "1990-05-17"}`, nil},
		{"born 1900-01-01", `{` + names + `, "date_of_birth": "1900-01-01"}`, nil},
		{"born today", `{` + names + `, "date_of_birth": "2024-06-15"}`, nil},
		{"born tomorrow (time-zone slack)", `{` + names + `, "date_of_birth": "2024-06-16"}`, nil},
		{"born before 1900", `{` + names + `, "date_of_birth": "1899-12-31"}`, map[string]string{"/date_of_birth": "out_of_range"}},
		{"born in the future", `{` + names + `, "date_of_birth": "2024-06-17"}`, map[string]string{"/date_of_birth": "out_of_range"}},
		{"born far in the future", `{` + names + `, "date_of_birth": "2999-01-01"}`, map[string]string{"/date_of_birth": "out_of_range"}},
		{"unpadded date", `{` + names + `, "date_of_birth": "1990-5-17"}`, map[string]string{"/date_of_birth": "invalid_date"}},
		{"day-first date", `{` + names + `, "date_of_birth": "17/05/1990"}`, map[string]string{"/date_of_birth": "invalid_date"}},
		{"impossible date", `{` + names + `, "date_of_birth": "1990-02-30"}`, map[string]string{"/date_of_birth": "invalid_date"}},
		{"date with time", `{` + names + `, "date_of_birth": "1990-05-17T00:00:00Z"}`, map[string]string{"/date_of_birth": "invalid_date"}},

		{"everything wrong", `{"first_name": "", "last_name": null, "date_of_birth": "x", "email": "x", "phone": "x", "notes": "` + strings.Repeat("n", 10001) + `"}`,
			map[string]string{"/first_name": "required", "/last_name": "required", "/date_of_birth": "invalid_date",
				"/email": "invalid_email", "/phone": "invalid_phone", "/notes": "too_long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := crm.NewPatient(uuid.New(), decode(t, tt.body), now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("NewPatient: %v", err)
				}
				return
			}
			if got := faulttest.FieldCodes(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("field errors = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(p, crm.Patient{}) {
				t.Errorf("patient = %+v on error, want the zero patient", p)
			}
		})
	}
}

// TestUpdateMergePatch proves Update is a JSON merge patch: absent members
// stay, null and "" clear optional fields, values replace (trimmed and
// normalised), and UpdatedAt advances while CreatedAt stays.
func TestUpdateMergePatch(t *testing.T) {
	later := now.Add(time.Hour)
	tests := []struct {
		name  string
		patch string
		edit  func(p *crm.Patient) // what the patch should do to the patient
	}{
		{"empty patch", `{}`, func(p *crm.Patient) {}},
		{"rename", `{"first_name": " Bea "}`, func(p *crm.Patient) { p.FirstName = "Bea" }},
		{"null clears email", `{"email": null}`, func(p *crm.Patient) { p.Email = nil }},
		{"empty string clears phone", `{"phone": ""}`, func(p *crm.Patient) { p.Phone = nil }},
		{"blank clears notes", `{"notes": "  "}`, func(p *crm.Patient) { p.Notes = nil }},
		{"null clears date of birth", `{"date_of_birth": null}`, func(p *crm.Patient) { p.DateOfBirth = nil }},
		{"new email is lower-cased", `{"email": "BEA@Example.com"}`, func(p *crm.Patient) { p.Email = str("bea@example.com") }},
		{"several at once", `{"last_name": "Ruiz", "notes": "ok", "phone": null}`, func(p *crm.Patient) {
			p.LastName, p.Notes, p.Phone = "Ruiz", str("ok"), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPatient(t)
			want := newPatient(t)
			want.ID, want.ClinicID = p.ID, p.ClinicID
			tt.edit(&want)
			want.UpdatedAt = later

			if err := p.Update(decode(t, tt.patch), later); err != nil {
				t.Fatalf("Update(%s): %v", tt.patch, err)
			}
			if !reflect.DeepEqual(p, want) {
				t.Errorf("after %s:\n got %+v\nwant %+v", tt.patch, p, want)
			}
			if !p.CreatedAt.Equal(now) {
				t.Errorf("CreatedAt moved to %v", p.CreatedAt)
			}
		})
	}
}

// TestUpdateLeavesPatientUnchangedOnError proves a patch with any invalid
// member changes nothing, not even its valid members or UpdatedAt.
func TestUpdateLeavesPatientUnchangedOnError(t *testing.T) {
	patches := []string{
		`{"first_name": null}`,
		`{"last_name": ""}`,
		`{"first_name": "Bea", "email": "not an email"}`,
		`{"notes": null, "date_of_birth": "1850-01-01"}`,
		`{"phone": "x", "email": null}`,
	}
	for _, patch := range patches {
		p := newPatient(t)
		before := p
		before.DateOfBirth, before.Email = str(*p.DateOfBirth), str(*p.Email)
		before.Phone, before.Notes = str(*p.Phone), str(*p.Notes)

		err := p.Update(decode(t, patch), now.Add(time.Hour))
		faulttest.FieldCodes(t, err)
		if !reflect.DeepEqual(p, before) {
			t.Errorf("after failed %s:\n got %+v\nwant %+v", patch, p, before)
		}
	}
}

// TestOptionalJSON proves Optional tells an absent member from null from a
// value, and Ptr gives nil for the first two and a copy of the value.
func TestOptionalJSON(t *testing.T) {
	var v struct {
		A crm.Optional[string] `json:"a"`
		B crm.Optional[string] `json:"b"`
		C crm.Optional[string] `json:"c"`
		D crm.Optional[int]    `json:"d"`
	}
	if err := json.Unmarshal([]byte(`{"b": null, "c": "x", "d": 0}`), &v); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"absent", v.A, crm.Optional[string]{}},
		{"null", v.B, crm.Optional[string]{Set: true, Null: true}},
		{"value", v.C, crm.Some("x")},
		{"zero value is still set", v.D, crm.Some(0)},
		{"absent Ptr", v.A.Ptr(), (*string)(nil)},
		{"null Ptr", v.B.Ptr(), (*string)(nil)},
		{"value Ptr", v.C.Ptr(), str("x")},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	if p := v.C.Ptr(); p == &v.C.Value {
		t.Errorf("Ptr aliases the Optional's value")
	}
}

// TestOptionalTypeErrorNamesField proves a wrongly typed member fails with a
// *json.UnmarshalTypeError naming the member, so the edge can point at it.
func TestOptionalTypeErrorNamesField(t *testing.T) {
	tests := []struct{ body, field string }{
		{`{"first_name": 5}`, "first_name"},
		{`{"last_name": "L", "notes": {"a": 1}}`, "notes"},
		{`{"date_of_birth": true}`, "date_of_birth"},
		{`{"phone": ["1"]}`, "phone"},
	}
	for _, tt := range tests {
		var f crm.PatientFields
		err := json.Unmarshal([]byte(tt.body), &f)
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			t.Errorf("Unmarshal(%s) = %v, want *json.UnmarshalTypeError", tt.body, err)
			continue
		}
		if typeErr.Field != tt.field {
			t.Errorf("Unmarshal(%s): Field = %q, want %q", tt.body, typeErr.Field, tt.field)
		}
	}
}

// TestPatientJSON proves unknown optional fields serialise as null, and
// dates keep the YYYY-MM-DD form.
func TestPatientJSON(t *testing.T) {
	p, err := crm.NewPatient(uuid.New(), decode(t, `{"first_name": "Ana", "last_name": "L", "date_of_birth": "1990-05-17"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"email", "phone", "notes"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if m["date_of_birth"] != "1990-05-17" {
		t.Errorf("date_of_birth = %v", m["date_of_birth"])
	}
}
