package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// timeMember parses an RFC 3339 timestamp member.
func timeMember(t *testing.T, r response, name string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, r.str(name))
	if err != nil {
		t.Fatalf("%s %q: %v", name, r.str(name), err)
	}
	return v
}

// Creating a patient with every field returns them normalised (names
// trimmed, email lower-cased, date as YYYY-MM-DD) with server-set id,
// clinic_id, created_at and updated_at; reading it back gives the same.
func TestCreatePatientAllFields(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	before := time.Now().Add(-time.Second)
	r := a.call("POST", "/v1/clinics/"+clinicID+"/patients", key, map[string]any{
		"first_name":    "  Eva ",
		"last_name":     "Ruiz Gómez",
		"date_of_birth": "1985-07-14",
		"email":         "Eva.Ruiz@Example.COM",
		"phone":         "+34 600 123 456",
		"notes":         "Allergic to penicillin.",
	}).want(t, http.StatusCreated)

	want := map[string]string{
		"clinic_id":     clinicID,
		"first_name":    "Eva",
		"last_name":     "Ruiz Gómez",
		"date_of_birth": "1985-07-14",
		"email":         "eva.ruiz@example.com",
		"phone":         "+34 600 123 456",
		"notes":         "Allergic to penicillin.",
	}
	for k, v := range want {
		if r.str(k) != v {
			t.Errorf("%s = %q, want %q", k, r.str(k), v)
		}
	}
	if _, err := uuid.Parse(r.str("id")); err != nil {
		t.Errorf("id %q: %v", r.str("id"), err)
	}
	created, updated := timeMember(t, r, "created_at"), timeMember(t, r, "updated_at")
	if !created.Equal(updated) || created.Before(before) || created.After(time.Now().Add(time.Second)) {
		t.Errorf("created_at %v, updated_at %v", created, updated)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if loc := r.Header.Get("Location"); loc != "/v1/clinics/"+clinicID+"/patients/"+r.str("id") {
		t.Errorf("Location %q", loc)
	}
	got := a.call("GET", "/v1/clinics/"+clinicID+"/patients/"+r.str("id"), key, nil).want(t, http.StatusOK)
	if string(got.raw) != string(r.raw) {
		t.Errorf("read back %s, created %s", got.raw, r.raw)
	}

	// The optional fields may be left out; they read as null.
	min := a.newPatient(key, clinicID, "Ana", "Gil")
	for _, k := range []string{"date_of_birth", "email", "phone", "notes"} {
		if v, ok := min.body[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
}

// PATCH is a JSON merge patch: absent members stay, null clears an optional
// member, values replace; updated_at advances and created_at stays.
func TestPatchPatientMergeSemantics(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	orig := a.call("POST", "/v1/clinics/"+clinicID+"/patients", key, map[string]any{
		"first_name": "Eva", "last_name": "Ruiz", "date_of_birth": "1985-07-14",
		"email": "eva@example.com", "phone": "600123456", "notes": "first visit",
	}).want(t, http.StatusCreated)
	path := "/v1/clinics/" + clinicID + "/patients/" + orig.str("id")

	r := a.call("PATCH", path, key, `{"phone":null,"email":"","notes":"second visit","last_name":"Ruiz Gil"}`).want(t, http.StatusOK)
	want := map[string]any{
		"id": orig.str("id"), "clinic_id": clinicID, "first_name": "Eva", "last_name": "Ruiz Gil",
		"date_of_birth": "1985-07-14", "email": nil, "phone": nil, "notes": "second visit",
		"created_at": orig.str("created_at"),
	}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("after patch %s = %v, want %v", k, r.body[k], v)
		}
	}
	if !timeMember(t, r, "updated_at").After(timeMember(t, orig, "updated_at")) {
		t.Errorf("updated_at %s did not advance from %s", r.str("updated_at"), orig.str("updated_at"))
	}
	got := a.call("GET", path, key, nil).want(t, http.StatusOK)
	if string(got.raw) != string(r.raw) {
		t.Errorf("read back %s, patched %s", got.raw, r.raw)
	}

	// An empty patch changes no field.
	same := a.call("PATCH", path, key, map[string]any{}).want(t, http.StatusOK)
	for k, v := range want {
		if same.body[k] != v {
			t.Errorf("after empty patch %s = %v, want %v", k, same.body[k], v)
		}
	}
}

// A patch that breaks a rule is 422 pointing at the member and changes
// nothing: null or "" on a required name, a malformed, impossible, too old
// or future date of birth, a bad email or phone.
func TestPatchPatientValidation(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	orig := a.call("POST", "/v1/clinics/"+clinicID+"/patients", key, map[string]any{
		"first_name": "Eva", "last_name": "Ruiz", "date_of_birth": "1985-07-14",
	}).want(t, http.StatusCreated)
	path := "/v1/clinics/" + clinicID + "/patients/" + orig.str("id")
	future := time.Now().UTC().AddDate(0, 0, 3).Format("2006-01-02")

	cases := []struct {
		body, pointer, code string
	}{
		{`{"first_name":null}`, "/first_name", "required"},
		{`{"last_name":null}`, "/last_name", "required"},
		{`{"first_name":" "}`, "/first_name", "required"},
		{`{"first_name":"` + strings.Repeat("a", 101) + `"}`, "/first_name", "too_long"},
		{`{"date_of_birth":"14/07/1985"}`, "/date_of_birth", "invalid_date"},
		{`{"date_of_birth":"1985-7-14"}`, "/date_of_birth", "invalid_date"},
		{`{"date_of_birth":"1985-02-30"}`, "/date_of_birth", "invalid_date"},
		{`{"date_of_birth":"1985-07-14T00:00:00Z"}`, "/date_of_birth", "invalid_date"},
		{`{"date_of_birth":"` + future + `"}`, "/date_of_birth", "out_of_range"},
		{`{"date_of_birth":"1899-12-31"}`, "/date_of_birth", "out_of_range"},
		{`{"email":"eva at example.com"}`, "/email", "invalid_email"},
		{`{"phone":"call me"}`, "/phone", "invalid_phone"},
		{`{"first_name":7}`, "/first_name", "invalid_type"},
	}
	for _, c := range cases {
		t.Run(c.body[:min(len(c.body), 40)], func(t *testing.T) {
			a.on(t).call("PATCH", path, key, c.body).wantFieldError(t, c.pointer, c.code)
		})
	}
	got := a.call("GET", path, key, nil).want(t, http.StatusOK)
	if string(got.raw) != string(orig.raw) {
		t.Errorf("invalid patches changed the patient: %s, was %s", got.raw, orig.raw)
	}
}

// Creating with an invalid or future date of birth is 422 at /date_of_birth.
func TestCreatePatientDateOfBirth(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	path := "/v1/clinics/" + clinicID + "/patients"
	for dob, code := range map[string]string{
		"1985/07/14": "invalid_date",
		"19850714":   "invalid_date",
		"2999-01-01": "out_of_range",
		time.Now().UTC().AddDate(1, 0, 0).Format("2006-01-02"): "out_of_range",
	} {
		a.call("POST", path, key, map[string]any{"first_name": "Eva", "last_name": "Ruiz", "date_of_birth": dob}).
			wantFieldError(t, "/date_of_birth", code)
	}
	// Today is a valid date of birth.
	today := time.Now().UTC().Format("2006-01-02")
	r := a.call("POST", path, key, map[string]any{"first_name": "Bebé", "last_name": "Ruiz", "date_of_birth": today}).want(t, http.StatusCreated)
	if r.str("date_of_birth") != today {
		t.Errorf("date_of_birth %q, want %q", r.str("date_of_birth"), today)
	}
}

// Text the database cannot store (a NUL character) is a 422 for the member,
// never a 500 from the driver.
func TestPatientTextWithNUL(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	for _, member := range []string{"first_name", "last_name", "notes"} {
		body := map[string]any{"first_name": "Eva", "last_name": "Ruiz"}
		body[member] = "Eva\u0000"
		r := a.call("POST", "/v1/clinics/"+clinicID+"/patients", key, body)
		r.wantProblem(t, http.StatusUnprocessableEntity, "validation_failed")
		if errs := r.fieldErrors(); len(errs) != 1 || errs[0]["pointer"] != "/"+member {
			t.Errorf("%s with NUL: %s", member, r.raw)
		}
	}
}

// An unknown or malformed patient id is 404 patient_not_found for GET and
// PATCH.
func TestPatientNotFound(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	a.newPatient(key, clinicID, "Eva", "Ruiz")
	for _, id := range []string{uuid.NewString(), uuid.Nil.String(), "not-a-uuid", "42"} {
		path := "/v1/clinics/" + clinicID + "/patients/" + id
		a.call("GET", path, key, nil).wantProblem(t, http.StatusNotFound, "patient_not_found")
		a.call("PATCH", path, key, map[string]any{"notes": "x"}).wantProblem(t, http.StatusNotFound, "patient_not_found")
	}
}
