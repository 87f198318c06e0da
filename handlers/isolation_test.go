package handlers_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// clinicRequest is one request to a path under a clinic.
type clinicRequest struct {
	method, path string // path below /v1/clinics/{id}
	body         any
	headers      []string
}

// clinicRoutes is every route under a clinic, with a valid body where one is
// taken; patientID names a real patient of the clinic.
func clinicRoutes(patientID, newEmail string) []clinicRequest {
	return []clinicRequest{
		{method: "GET", path: ""},
		{method: "GET", path: "/members"},
		{method: "POST", path: "/members", body: map[string]any{"email": newEmail, "role": "billing"}},
		{method: "GET", path: "/patients"},
		{method: "GET", path: "/patients?limit=0&cursor=bad"},
		{method: "POST", path: "/patients", body: map[string]any{"first_name": "Eva", "last_name": "Ruiz"}},
		{method: "GET", path: "/patients/" + patientID},
		{method: "PATCH", path: "/patients/" + patientID, body: map[string]any{"notes": "changed"}},
	}
}

// invalidBodies are bodies every write route refuses, as extra headers and
// body: if any of them is looked at before membership, a non-member would
// learn something.
var invalidBodies = []struct {
	name    string
	body    any
	headers []string
}{
	{"malformed", `{"first_name":`, nil},
	{"invalid", map[string]any{"unknown": true}, nil},
	{"wrong media type", `{}`, []string{"Content-Type", "text/plain"}},
	{"empty", `{}`, nil},
}

// A user who is not a member of a clinic gets the same 404 clinic_not_found
// for every route under it (with valid and invalid bodies), as for a clinic
// that does not exist or a malformed id: existence never leaks, and nothing
// is written.
func TestNonMemberSeesNothing(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	outsider := a.newUser(email(t, "outsider"))
	a.newClinic(outsider) // a member elsewhere, to be sure that does not help
	clinicID := a.newClinic(owner)
	patient := a.newPatient(owner, clinicID, "Eva", "Ruiz")

	var reference map[string]any
	for _, clinic := range []string{clinicID, uuid.NewString(), "not-a-uuid", strings.ToUpper(uuid.NewString())} {
		for _, rt := range clinicRoutes(patient.str("id"), email(t, "invitee")) {
			variants := []clinicRequest{rt}
			if rt.body != nil {
				for _, b := range invalidBodies {
					variants = append(variants, clinicRequest{rt.method, rt.path, b.body, b.headers})
				}
			}
			for _, v := range variants {
				r := a.call(v.method, "/v1/clinics/"+clinic+v.path, outsider, v.body, v.headers...).
					wantProblem(t, http.StatusNotFound, "clinic_not_found")
				delete(r.body, "request_id")
				if reference == nil {
					reference = r.body
				} else if !equalJSON(reference, r.body) {
					t.Errorf("%s %s: problem %v differs from %v", v.method, v.path, r.body, reference)
				}
			}
		}
	}

	// Nothing changed in the clinic.
	members := a.call("GET", "/v1/clinics/"+clinicID+"/members", owner, nil).want(t, http.StatusOK)
	if n := len(members.items()); n != 1 {
		t.Errorf("%d members, want only the owner: %s", n, members.raw)
	}
	list := a.call("GET", "/v1/clinics/"+clinicID+"/patients", owner, nil).want(t, http.StatusOK)
	if ids := list.ids("id"); len(ids) != 1 || ids[0] != patient.str("id") || list.items()[0]["notes"] != nil {
		t.Errorf("patients changed by a non-member: %s", list.raw)
	}
}

// equalJSON compares two decoded JSON objects.
func equalJSON(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A patient of clinic X asked for under clinic Y, where the caller is a
// member of both, is 404 patient_not_found for reads and writes, and the
// patient is not changed.
func TestPatientOfAnotherClinic(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	x, y := a.newClinic(key), a.newClinic(key)
	p := a.newPatient(key, x, "Eva", "Ruiz")

	a.call("GET", "/v1/clinics/"+y+"/patients/"+p.str("id"), key, nil).wantProblem(t, http.StatusNotFound, "patient_not_found")
	a.call("PATCH", "/v1/clinics/"+y+"/patients/"+p.str("id"), key, map[string]any{"notes": "moved"}).
		wantProblem(t, http.StatusNotFound, "patient_not_found")
	if list := a.call("GET", "/v1/clinics/"+y+"/patients", key, nil).want(t, http.StatusOK); len(list.items()) != 0 {
		t.Errorf("clinic Y lists X's patient: %s", list.raw)
	}
	got := a.call("GET", "/v1/clinics/"+x+"/patients/"+p.str("id"), key, nil).want(t, http.StatusOK)
	if string(got.raw) != string(p.raw) {
		t.Errorf("patient changed through another clinic: %s, was %s", got.raw, p.raw)
	}
}

// Each role gets exactly its rights: every member reads the clinic, its
// members and its patients; reception, admin and owner write patients; only
// admin and owner add members. A missing right is 403 forbidden, decided
// before the body is read.
func TestRoleMatrix(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	patientID := a.newPatient(owner, clinicID, "Eva", "Ruiz").str("id")
	base := "/v1/clinics/" + clinicID

	cases := []struct {
		role                  string
		writePatients, manage bool
	}{
		{"owner", true, true},
		{"admin", true, true},
		{"practitioner", false, false},
		{"reception", true, false},
		{"billing", false, false},
	}
	for _, c := range cases {
		t.Run(c.role, func(t *testing.T) {
			a := a.on(t)
			key := owner
			if c.role != "owner" {
				key = a.newMember(owner, clinicID, c.role)
			}
			if got := a.call("GET", base, key, nil).want(t, http.StatusOK).str("role"); got != c.role {
				t.Errorf("clinic shows role %q", got)
			}
			a.call("GET", base+"/members", key, nil).want(t, http.StatusOK)
			a.call("GET", base+"/patients", key, nil).want(t, http.StatusOK)
			a.call("GET", base+"/patients/"+patientID, key, nil).want(t, http.StatusOK)

			create := a.call("POST", base+"/patients", key, map[string]any{"first_name": "Ana", "last_name": c.role})
			patch := a.call("PATCH", base+"/patients/"+patientID, key, map[string]any{"notes": "seen by " + c.role})
			add := a.call("POST", base+"/members", key, map[string]any{"email": email(t, "new"), "role": "billing"})
			if c.writePatients {
				create.want(t, http.StatusCreated)
				patch.want(t, http.StatusOK)
			} else {
				create.wantProblem(t, http.StatusForbidden, "forbidden")
				patch.wantProblem(t, http.StatusForbidden, "forbidden")
				for _, b := range invalidBodies {
					a.call("POST", base+"/patients", key, b.body, b.headers...).wantProblem(t, http.StatusForbidden, "forbidden")
					a.call("PATCH", base+"/patients/"+patientID, key, b.body, b.headers...).wantProblem(t, http.StatusForbidden, "forbidden")
				}
			}
			if c.manage {
				add.want(t, http.StatusCreated)
			} else {
				add.wantProblem(t, http.StatusForbidden, "forbidden")
				for _, b := range invalidBodies {
					a.call("POST", base+"/members", key, b.body, b.headers...).wantProblem(t, http.StatusForbidden, "forbidden")
				}
			}
		})
	}
}

// Owners may grant any role, admins any but owner (403 role_not_grantable).
func TestGrantingRoles(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	admin := a.newMember(owner, clinicID, "admin")
	members := "/v1/clinics/" + clinicID + "/members"

	for _, role := range []string{"admin", "practitioner", "reception", "billing"} {
		a.call("POST", members, admin, map[string]any{"email": email(t, role), "role": role}).want(t, http.StatusCreated)
	}
	refused := email(t, "would-be-owner")
	a.call("POST", members, admin, map[string]any{"email": refused, "role": "owner"}).
		wantProblem(t, http.StatusForbidden, "role_not_grantable")
	for _, m := range a.call("GET", members+"?limit=100", owner, nil).want(t, http.StatusOK).items() {
		if m["email"] == refused {
			t.Errorf("refused grant made a member: %v", m)
		}
	}

	r := a.call("POST", members, owner, map[string]any{"email": email(t, "co-owner"), "role": "owner"}).want(t, http.StatusCreated)
	if r.str("role") != "owner" {
		t.Errorf("granted role %q", r.str("role"))
	}
}

// Adding a member: an unknown email creates the user (lower-cased, named
// after the local part unless a name is given) and the member is listed with
// user_id, email, name and role; adding them again, in any letter case, is
// 409 member_exists; a bad role or email is 422 pointing at it.
func TestAddMember(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	members := "/v1/clinics/" + clinicID + "/members"

	newcomer := email(t, "newcomer")
	created := a.call("POST", members, owner, map[string]any{"email": strings.ToUpper(newcomer), "role": "practitioner"}).
		want(t, http.StatusCreated)
	named := email(t, "named")
	a.call("POST", members, owner, map[string]any{"email": named, "name": "Dr. Ana Gil", "role": "admin"}).want(t, http.StatusCreated)

	list := a.call("GET", members, owner, nil).want(t, http.StatusOK)
	byEmail := map[string]map[string]any{}
	for _, m := range list.items() {
		byEmail[m["email"].(string)] = m
	}
	localPart, _, _ := strings.Cut(newcomer, "@")
	want := map[string][2]string{ // email → name, role
		newcomer: {localPart, "practitioner"},
		named:    {"Dr. Ana Gil", "admin"},
	}
	if len(byEmail) != 3 {
		t.Errorf("%d members, want 3: %s", len(byEmail), list.raw)
	}
	for addr, w := range want {
		m, ok := byEmail[addr]
		if !ok {
			t.Errorf("%s not listed: %s", addr, list.raw)
			continue
		}
		if _, err := uuid.Parse(m["user_id"].(string)); err != nil || m["name"] != w[0] || m["role"] != w[1] {
			t.Errorf("member %v, want name %q role %q", m, w[0], w[1])
		}
	}
	if byEmail[newcomer]["user_id"] != created.str("user_id") || created.str("email") != newcomer || created.str("role") != "practitioner" {
		t.Errorf("listed user_id differs from the created one %s", created.raw)
	}

	for _, again := range []string{newcomer, strings.ToUpper(newcomer)} {
		a.call("POST", members, owner, map[string]any{"email": again, "role": "billing"}).
			wantProblem(t, http.StatusConflict, "member_exists")
	}
	a.call("POST", members, owner, map[string]any{"email": email(t, "x"), "role": "superuser"}).wantFieldError(t, "/role", "invalid_role")
	a.call("POST", members, owner, map[string]any{"email": email(t, "x"), "role": "Owner"}).wantFieldError(t, "/role", "invalid_role")
	a.call("POST", members, owner, map[string]any{"email": "not an email", "role": "billing"}).wantFieldError(t, "/email", "invalid_email")
	a.call("POST", members, owner, map[string]any{"email": "Ana <ana@example.com>", "role": "billing"}).wantFieldError(t, "/email", "invalid_email")
}

// GET /v1/clinics lists exactly the caller's clinics, each with the caller's
// role in it.
func TestListClinics(t *testing.T) {
	a := newAPI(t)
	myEmail := email(t, "me")
	me := a.newUser(myEmail)
	other := a.newUser(email(t, "other"))
	mine := a.newClinic(me)
	theirs := a.newClinic(other)
	a.newClinic(other) // not mine at all
	a.call("POST", "/v1/clinics/"+theirs+"/members", other, map[string]any{"email": myEmail, "role": "reception"}).
		want(t, http.StatusCreated)

	list := a.call("GET", "/v1/clinics", me, nil).want(t, http.StatusOK)
	got := map[string]string{}
	for _, c := range list.items() {
		got[c["id"].(string)], _ = c["role"].(string)
	}
	want := map[string]string{mine: "owner", theirs: "reception"}
	if len(got) != len(want) || got[mine] != "owner" || got[theirs] != "reception" {
		t.Errorf("clinics %v, want %v: %s", got, want, list.raw)
	}
	ids := list.ids("id")
	if !sort.StringsAreSorted(ids) {
		t.Errorf("clinics not in id order: %v", ids)
	}
}
