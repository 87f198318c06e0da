package handlers_test

import (
	"net/http"
	"testing"
)

// The README's walkthrough: clinic → member → patient → list.
func TestWalkthrough(t *testing.T) {
	a := newAPI(t)
	key := a.newUser("owner-walk@example.com")

	r := a.call("POST", "/v1/clinics", key, map[string]any{"name": "Clínica Sol", "currency": "EUR", "timezone": "Europe/Madrid"}).
		want(t, http.StatusCreated)
	clinicID := r.str("id")
	if loc := r.Header.Get("Location"); loc != "/v1/clinics/"+clinicID {
		t.Errorf("Location %q", loc)
	}
	if r.str("role") != "owner" {
		t.Errorf("creator's role %q, want owner", r.str("role"))
	}

	a.call("POST", "/v1/clinics/"+clinicID+"/members", key, map[string]any{"email": "Reception-Walk@Example.com", "role": "reception"}).
		want(t, http.StatusCreated)
	members := a.call("GET", "/v1/clinics/"+clinicID+"/members", key, nil).want(t, http.StatusOK)
	if n := len(members.body["data"].([]any)); n != 2 {
		t.Fatalf("%d members, want 2: %s", n, members.raw)
	}

	p := a.call("POST", "/v1/clinics/"+clinicID+"/patients", key, map[string]any{"first_name": "Eva", "last_name": "Ruiz", "date_of_birth": "1990-02-03"}).
		want(t, http.StatusCreated)
	if p.Header.Get("Location") != "/v1/clinics/"+clinicID+"/patients/"+p.str("id") {
		t.Errorf("patient Location %q", p.Header.Get("Location"))
	}
	got := a.call("GET", "/v1/clinics/"+clinicID+"/patients/"+p.str("id"), key, nil).want(t, http.StatusOK)
	if string(got.raw) != string(p.raw) {
		t.Errorf("read back %s, created %s", got.raw, p.raw)
	}
}
