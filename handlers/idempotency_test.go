package handlers_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/handlers"
	"github.com/aura-clinic/aura/schema/dbtest"
)

const (
	idemKey  = handlers.IdempotencyKeyHeader
	replayed = handlers.IdempotentReplayedHeader
)

// count runs a count(*) query on the package's database.
func count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := dbtest.Pool(t).QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// userOf returns the id of the user whose API key is apiKey.
func userOf(t *testing.T, apiKey string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	err := dbtest.Pool(t).QueryRow(context.Background(),
		`SELECT user_id FROM api_keys WHERE secret_hash = $1`, platform.HashSecret(apiKey)).Scan(&id)
	if err != nil {
		t.Fatalf("user of API key: %v", err)
	}
	return id
}

// keyRows counts the stored outcomes of apiKey's user under the idempotency key.
func keyRows(t *testing.T, apiKey, key string) int {
	t.Helper()
	return count(t, `SELECT count(*) FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userOf(t, apiKey), key)
}

// patientRows counts the clinic's patients.
func patientRows(t *testing.T, clinicID string) int {
	t.Helper()
	return count(t, `SELECT count(*) FROM patients WHERE clinic_id = $1`, clinicID)
}

// wantReplay checks that again replays first: the same status, body bytes,
// Location and Content-Type, Idempotent-Replayed: true on again and not on
// first, and a request id of its own.
func wantReplay(t *testing.T, first, again response) {
	t.Helper()
	if again.StatusCode != first.StatusCode {
		t.Errorf("replay status %d, original %d", again.StatusCode, first.StatusCode)
	}
	if !bytes.Equal(again.raw, first.raw) {
		t.Errorf("replay body differs:\n original %s\n replay   %s", first.raw, again.raw)
	}
	for _, h := range []string{"Location", "Content-Type"} {
		if got, want := again.Header.Get(h), first.Header.Get(h); got != want {
			t.Errorf("replay %s %q, original %q", h, got, want)
		}
	}
	if v := first.Header.Values(replayed); v != nil {
		t.Errorf("original has %s: %q", replayed, v)
	}
	if v := again.Header.Get(replayed); v != "true" {
		t.Errorf("replay has %s %q, want \"true\"", replayed, v)
	}
	id1, id2 := first.Header.Get(handlers.RequestIDHeader), again.Header.Get(handlers.RequestIDHeader)
	if id1 == "" || id2 == "" || id1 == id2 {
		t.Errorf("request ids %q (original) and %q (replay), want two distinct ones", id1, id2)
	}
}

// wantFresh fails the test if r is marked as a replay.
func wantFresh(t *testing.T, r response) {
	t.Helper()
	if v := r.Header.Values(replayed); v != nil {
		t.Errorf("%s %s: %s %q on a request that should have run", r.Request.Method, r.Request.URL.Path, replayed, v)
	}
}

// concurrently sends every request at once and returns the answers in order.
func concurrently(t *testing.T, reqs []*http.Request) []response {
	t.Helper()
	answers := make([]response, len(reqs))
	errs := make([]error, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i], errs[i] = send(req)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return answers
}

// clinicBody is a clinic's creation body whose name no other test uses.
func clinicBody() map[string]any {
	return map[string]any{"name": "Clínica " + uuid.NewString(), "currency": "EUR", "timezone": "Europe/Madrid"}
}

// A retried POST of a patient is answered from the stored outcome: the same
// status (201), body bytes and Location, marked Idempotent-Replayed (the
// original is not), each with its own X-Request-Id; one patient and one
// idempotency_keys row exist.
func TestIdempotentReplayPatient(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	path := "/v1/clinics/" + clinicID + "/patients"
	k := uuid.NewString()
	body := map[string]any{"first_name": "Eva", "last_name": "Ruiz", "notes": "retry me"}

	first := a.call("POST", path, owner, body, idemKey, k).want(t, http.StatusCreated)
	again := a.call("POST", path, owner, body, idemKey, k).want(t, http.StatusCreated)
	wantReplay(t, first, again)
	if loc := first.Header.Get("Location"); loc != path+"/"+first.str("id") {
		t.Errorf("Location %q, want %q", loc, path+"/"+first.str("id"))
	}
	if n := patientRows(t, clinicID); n != 1 {
		t.Errorf("%d patients, want 1", n)
	}
	if n := keyRows(t, owner, k); n != 1 {
		t.Errorf("%d idempotency_keys rows, want 1", n)
	}
}

// POST /v1/clinics runs on the executor, outside any clinic actor; its retry
// is replayed the same way (status, body, Location, header) and creates no
// second clinic. The key is stored with no clinic.
func TestIdempotentReplayClinic(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	k := uuid.NewString()
	body := clinicBody()

	first := a.call("POST", "/v1/clinics", owner, body, idemKey, k).want(t, http.StatusCreated)
	again := a.call("POST", "/v1/clinics", owner, body, idemKey, k).want(t, http.StatusCreated)
	wantReplay(t, first, again)
	if loc := first.Header.Get("Location"); loc != "/v1/clinics/"+first.str("id") {
		t.Errorf("Location %q", loc)
	}
	if n := count(t, `SELECT count(*) FROM clinics WHERE name = $1`, body["name"]); n != 1 {
		t.Errorf("%d clinics, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM members WHERE user_id = $1`, userOf(t, owner)); n != 1 {
		t.Errorf("owner of %d clinics, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND clinic_id IS NULL`,
		userOf(t, owner), k); n != 1 {
		t.Errorf("%d idempotency_keys rows without a clinic, want 1", n)
	}
}

// A retried POST of a member is replayed (no Location on either) and the
// member is added, and the user created, once.
func TestIdempotentReplayMember(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	path := "/v1/clinics/" + clinicID + "/members"
	addr := email(t, "newcomer")
	k := uuid.NewString()
	body := map[string]any{"email": addr, "role": "practitioner"}

	first := a.call("POST", path, owner, body, idemKey, k).want(t, http.StatusCreated)
	again := a.call("POST", path, owner, body, idemKey, k).want(t, http.StatusCreated)
	wantReplay(t, first, again)
	if n := count(t, `SELECT count(*) FROM members m JOIN users u ON u.id = m.user_id WHERE u.email = $1 AND m.clinic_id = $2`,
		addr, clinicID); n != 1 {
		t.Errorf("%d memberships, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM users WHERE email = $1`, addr); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
	if n := keyRows(t, owner, k); n != 1 {
		t.Errorf("%d idempotency_keys rows, want 1", n)
	}
}

// The fingerprint is method, route and canonical body: the key with another
// body, or on another route, is 422 idempotency_key_reused and runs nothing;
// the same body with other whitespace, member order or string escapes is the
// same request and is replayed.
func TestIdempotencyKeyReused(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	patients := "/v1/clinics/" + clinicID + "/patients"
	k := uuid.NewString()

	first := a.call("POST", patients, owner, `{"first_name":"Eva","last_name":"Ruiz"}`, idemKey, k).want(t, http.StatusCreated)
	other := a.call("POST", patients, owner, `{"first_name":"Eva","last_name":"Gil"}`, idemKey, k).
		wantProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
	wantFresh(t, other)

	for _, same := range []string{
		"{ \"last_name\" : \"Ruiz\",\n\t\"first_name\": \"Eva\" }\n",
		`{"first_name":"\u0045va","last_name":"Ruiz"}`,
	} {
		again := a.call("POST", patients, owner, same, idemKey, k).want(t, http.StatusCreated)
		wantReplay(t, first, again)
	}

	// The same key on another route of the same clinic.
	addr := email(t, "newcomer")
	a.call("POST", "/v1/clinics/"+clinicID+"/members", owner, map[string]any{"email": addr, "role": "billing"}, idemKey, k).
		wantProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
	if n := count(t, `SELECT count(*) FROM users WHERE email = $1`, addr); n != 0 {
		t.Errorf("the reused key's request ran: %d users %s", n, addr)
	}
	if n := patientRows(t, clinicID); n != 1 {
		t.Errorf("%d patients, want 1", n)
	}
	if n := keyRows(t, owner, k); n != 1 {
		t.Errorf("%d idempotency_keys rows, want 1", n)
	}

	// Routes outside a clinic share a scope too: a clinic's key reused to
	// create an API key.
	k2 := uuid.NewString()
	a.call("POST", "/v1/clinics", owner, clinicBody(), idemKey, k2).want(t, http.StatusCreated)
	a.call("POST", "/v1/api-keys", owner, map[string]any{"name": "ci"}, idemKey, k2).
		wantProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
	if n := count(t, `SELECT count(*) FROM api_keys WHERE user_id = $1`, userOf(t, owner)); n != 1 {
		t.Errorf("%d API keys, want 1 (the reused key's request ran)", n)
	}
}

// 100 concurrent identical requests (same key and body) on POST patients,
// serialised by the clinic's actor, create exactly one patient; every answer
// is 201 with the same body and all but one are marked as replays.
func TestIdempotentConcurrentPatients(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	path := "/v1/clinics/" + clinicID + "/patients"
	k := uuid.NewString()

	reqs := make([]*http.Request, 100)
	for i := range reqs {
		reqs[i] = a.request("POST", path, owner, `{"first_name":"Eva","last_name":"Ruiz"}`, idemKey, k)
	}
	answers := concurrently(t, reqs)
	wantOneEffect(t, answers)
	if n := patientRows(t, clinicID); n != 1 {
		t.Errorf("%d patients, want 1", n)
	}
	if n := keyRows(t, owner, k); n != 1 {
		t.Errorf("%d idempotency_keys rows, want 1", n)
	}
}

// 100 concurrent identical POST /v1/clinics, serialised in-process by the
// executor's key locks, create exactly one clinic; every answer is 201 with
// the same id.
func TestIdempotentConcurrentClinics(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	k := uuid.NewString()
	body := clinicBody()

	reqs := make([]*http.Request, 100)
	for i := range reqs {
		reqs[i] = a.request("POST", "/v1/clinics", owner, body, idemKey, k)
	}
	answers := concurrently(t, reqs)
	wantOneEffect(t, answers)
	if n := count(t, `SELECT count(*) FROM clinics WHERE name = $1`, body["name"]); n != 1 {
		t.Errorf("%d clinics, want 1", n)
	}
	if n := keyRows(t, owner, k); n != 1 {
		t.Errorf("%d idempotency_keys rows, want 1", n)
	}
}

// wantOneEffect checks the answers to concurrent identical requests: all 201
// with the same body, exactly one not marked as a replay.
func wantOneEffect(t *testing.T, answers []response) {
	t.Helper()
	fresh := 0
	for _, r := range answers {
		r.want(t, http.StatusCreated)
		if !bytes.Equal(r.raw, answers[0].raw) {
			t.Errorf("answers differ:\n %s\n %s", answers[0].raw, r.raw)
		}
		if r.Header.Get(replayed) == "" {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers not marked as replays, want 1", fresh)
	}
	if _, err := uuid.Parse(answers[0].str("id")); err != nil {
		t.Errorf("id %q: %v", answers[0].str("id"), err)
	}
}

// A key belongs to its user, and on clinic routes to the clinic: two members
// of a clinic with the same key and body each create their own patient; one
// user's key in two clinics creates a patient in each; the same key outside
// any clinic is another scope again, and two users' same key on POST
// /v1/clinics create two clinics.
func TestIdempotencyKeyScope(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	reception := a.newMember(owner, clinicID, "reception")
	path := "/v1/clinics/" + clinicID + "/patients"
	k := uuid.NewString()
	body := map[string]any{"first_name": "Eva", "last_name": "Ruiz"}

	byOwner := a.call("POST", path, owner, body, idemKey, k).want(t, http.StatusCreated)
	byReception := a.call("POST", path, reception, body, idemKey, k).want(t, http.StatusCreated)
	wantFresh(t, byOwner)
	wantFresh(t, byReception)
	if byOwner.str("id") == byReception.str("id") {
		t.Errorf("two users with one key got the same patient %s", byOwner.str("id"))
	}
	if n := patientRows(t, clinicID); n != 2 {
		t.Errorf("%d patients, want 2", n)
	}

	other := a.newClinic(owner)
	inOther := a.call("POST", "/v1/clinics/"+other+"/patients", owner, body, idemKey, k).want(t, http.StatusCreated)
	wantFresh(t, inOther)
	if inOther.str("id") == byOwner.str("id") || inOther.str("clinic_id") != other {
		t.Errorf("the key in another clinic answered %s", inOther.raw)
	}
	if n := patientRows(t, other); n != 1 {
		t.Errorf("%d patients in the other clinic, want 1", n)
	}
	// The first clinic still replays its own outcome.
	wantReplay(t, byOwner, a.call("POST", path, owner, body, idemKey, k).want(t, http.StatusCreated))

	// Outside any clinic, the same key is a scope of its own.
	name := clinicBody()
	c1 := a.call("POST", "/v1/clinics", owner, name, idemKey, k).want(t, http.StatusCreated)
	c2 := a.call("POST", "/v1/clinics", reception, name, idemKey, k).want(t, http.StatusCreated)
	wantFresh(t, c1)
	wantFresh(t, c2)
	if c1.str("id") == c2.str("id") {
		t.Errorf("two users with one key got the same clinic %s", c1.str("id"))
	}
	if n := count(t, `SELECT count(*) FROM clinics WHERE name = $1`, name["name"]); n != 2 {
		t.Errorf("%d clinics, want 2", n)
	}
	if n := keyRows(t, owner, k); n != 3 {
		t.Errorf("owner has %d rows for the key, want 3 (two clinics and none)", n)
	}
}

// Requests rejected before or by validation or authorisation store nothing,
// so the same key then runs the corrected request afresh: malformed JSON, an
// unknown member, a missing required member (checked in the command); a role
// without the permission (403 at the edge), and a role the caller may not
// grant (403 inside the command).
func TestIdempotencyNothingStoredOnRejection(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	patients := "/v1/clinics/" + clinicID + "/patients"
	members := "/v1/clinics/" + clinicID + "/members"
	k := uuid.NewString()

	a.call("POST", patients, owner, `{"first_name":"Eva",`, idemKey, k).wantProblem(t, http.StatusBadRequest, "malformed_json")
	a.call("POST", patients, owner, `{"first_name":"Eva","last_name":"Ruiz","age":3}`, idemKey, k).
		wantFieldError(t, "/age", "unknown_field")
	a.call("POST", patients, owner, map[string]any{"first_name": "Eva"}, idemKey, k).wantFieldError(t, "/last_name", "required")
	if n := keyRows(t, owner, k); n != 0 {
		t.Fatalf("%d idempotency_keys rows after rejected requests, want 0", n)
	}
	fixed := a.call("POST", patients, owner, map[string]any{"first_name": "Eva", "last_name": "Ruiz"}, idemKey, k).
		want(t, http.StatusCreated)
	wantFresh(t, fixed)
	if n := patientRows(t, clinicID); n != 1 {
		t.Errorf("%d patients, want 1", n)
	}
	wantReplay(t, fixed, a.call("POST", patients, owner, map[string]any{"first_name": "Eva", "last_name": "Ruiz"}, idemKey, k))

	// Reception may not add members: 403 before the command, nothing
	// stored, so the key is still free for a request reception may make.
	reception := a.newMember(owner, clinicID, "reception")
	k2 := uuid.NewString()
	a.call("POST", members, reception, map[string]any{"email": email(t, "x"), "role": "billing"}, idemKey, k2).
		wantProblem(t, http.StatusForbidden, "forbidden")
	if n := keyRows(t, reception, k2); n != 0 {
		t.Errorf("%d idempotency_keys rows after a 403, want 0", n)
	}
	wantFresh(t, a.call("POST", patients, reception, map[string]any{"first_name": "Ana", "last_name": "Gil"}, idemKey, k2).
		want(t, http.StatusCreated))

	// An admin may not grant owner: the command's own 403 is not stored
	// either, and the corrected request runs.
	admin := a.newMember(owner, clinicID, "admin")
	k3 := uuid.NewString()
	addr := email(t, "granted")
	a.call("POST", members, admin, map[string]any{"email": addr, "role": "owner"}, idemKey, k3).
		wantProblem(t, http.StatusForbidden, "role_not_grantable")
	if n := keyRows(t, admin, k3); n != 0 {
		t.Errorf("%d idempotency_keys rows after role_not_grantable, want 0", n)
	}
	granted := a.call("POST", members, admin, map[string]any{"email": addr, "role": "billing"}, idemKey, k3).
		want(t, http.StatusCreated)
	wantFresh(t, granted)
	if granted.str("role") != "billing" {
		t.Errorf("granted %s", granted.raw)
	}
}

// A domain 4xx is an outcome: adding an existing member with key K is 409
// member_exists, and its retry is the same 409 marked as a replay, whose
// problem carries the retry's own request id.
func TestIdempotentStoredConflict(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	members := "/v1/clinics/" + clinicID + "/members"
	addr := email(t, "member")
	a.call("POST", members, owner, map[string]any{"email": addr, "role": "billing"}).want(t, http.StatusCreated)

	k := uuid.NewString()
	body := map[string]any{"email": addr, "role": "admin"}
	first := a.call("POST", members, owner, body, idemKey, k).wantProblem(t, http.StatusConflict, "member_exists")
	again := a.call("POST", members, owner, body, idemKey, k).wantProblem(t, http.StatusConflict, "member_exists")
	wantFresh(t, first)
	if v := again.Header.Get(replayed); v != "true" {
		t.Errorf("replayed conflict has %s %q", replayed, v)
	}
	if ra := again.Header.Values("Retry-After"); ra != nil {
		t.Errorf("a stored conflict is final, yet Retry-After %q", ra)
	}
	// wantProblem checked request_id against each answer's header.
	if first.str("request_id") == again.str("request_id") {
		t.Errorf("the replay repeats the original request_id %q", first.str("request_id"))
	}
	for _, m := range []string{"type", "title", "detail", "status"} {
		if first.body[m] != again.body[m] {
			t.Errorf("%s: original %v, replay %v", m, first.body[m], again.body[m])
		}
	}
	if n := keyRows(t, owner, k); n != 1 {
		t.Errorf("%d idempotency_keys rows, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM members m JOIN users u ON u.id = m.user_id WHERE u.email = $1 AND m.role = 'billing'`,
		addr); n != 1 {
		t.Errorf("the member changed: %d billing memberships, want 1", n)
	}
}

// An API key's secret is shown once: the replay of its creation is 201 with
// the same id, name and prefix and no key member, and the secret is in no
// column of idempotency_keys.
func TestIdempotentAPIKeyReplayHidesSecret(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	k := uuid.NewString()
	body := map[string]any{"name": "deploy"}

	first := a.call("POST", "/v1/api-keys", owner, body, idemKey, k).want(t, http.StatusCreated)
	secret := first.str("key")
	if !strings.HasPrefix(secret, platform.KeyPrefix) {
		t.Fatalf("created key has no secret: %s", first.raw)
	}
	again := a.call("POST", "/v1/api-keys", owner, body, idemKey, k).want(t, http.StatusCreated)
	if v := again.Header.Get(replayed); v != "true" {
		t.Errorf("replay has %s %q", replayed, v)
	}
	if _, ok := again.body["key"]; ok {
		t.Errorf("the replay shows the secret: %s", again.raw)
	}
	for m, v := range first.body {
		if m != "key" && again.body[m] != v {
			t.Errorf("%s: original %v, replay %v", m, v, again.body[m])
		}
	}
	if len(again.body) != len(first.body)-1 {
		t.Errorf("replay members %v, original %v", again.body, first.body)
	}
	rest := strings.TrimPrefix(secret, first.str("prefix"))
	if n := count(t, `SELECT count(*) FROM idempotency_keys i WHERE strpos(i::text, $1) > 0 OR strpos(i.outcome::text, $1) > 0`, rest); n != 0 {
		t.Errorf("the secret is stored in %d idempotency_keys rows", n)
	}
	if n := keyRows(t, owner, k); n != 1 {
		t.Errorf("%d idempotency_keys rows, want 1", n)
	}
	// The secret shown once still works.
	a.call("GET", "/v1/api-keys", secret, nil).want(t, http.StatusOK)
}

// The database row is authoritative: after the instance that served the
// original stops (server closed, actors stopped), a fresh instance over the
// same database replays it, on a clinic route and on the executor path.
func TestIdempotentReplayAfterRestart(t *testing.T) {
	before := newAPI(t)
	owner := before.newUser(email(t, "owner"))
	clinicID := before.newClinic(owner)
	path := "/v1/clinics/" + clinicID + "/patients"
	kp, kc := uuid.NewString(), uuid.NewString()
	patient := map[string]any{"first_name": "Eva", "last_name": "Ruiz"}
	clinic := clinicBody()
	p1 := before.call("POST", path, owner, patient, idemKey, kp).want(t, http.StatusCreated)
	c1 := before.call("POST", "/v1/clinics", owner, clinic, idemKey, kc).want(t, http.StatusCreated)
	before.stop()

	after := newAPI(t)
	wantReplay(t, p1, after.call("POST", path, owner, patient, idemKey, kp))
	wantReplay(t, c1, after.call("POST", "/v1/clinics", owner, clinic, idemKey, kc))
	if n := patientRows(t, clinicID); n != 1 {
		t.Errorf("%d patients, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM clinics WHERE name = $1`, clinic["name"]); n != 1 {
		t.Errorf("%d clinics, want 1", n)
	}
}

// While a patient's creation runs on instance A (blocked inside its
// transaction), the same key on instance B (another process, with its own
// actors) is 409 idempotency_key_in_flight with Retry-After: 1; once A
// commits, B replays A's answer.
func TestIdempotencyKeyInFlightElsewhere(t *testing.T) {
	a := newAPI(t)
	b := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	path := "/v1/clinics/" + clinicID + "/patients"

	// Inserting a patient takes a KEY SHARE lock on its clinic's row (the
	// foreign key), so A's insert waits while the row is locked FOR UPDATE.
	inFlightElsewhere(t, a, b, `SELECT 1 FROM clinics WHERE id = $1 FOR UPDATE`, clinicID,
		path, owner, `{"first_name":"Eva","last_name":"Ruiz"}`)
	if n := patientRows(t, clinicID); n != 1 {
		t.Errorf("%d patients, want 1", n)
	}
}

// The same holds on the executor path (POST /v1/clinics): in flight on A,
// 409 on B, then B replays.
func TestIdempotencyKeyInFlightElsewhereExecutor(t *testing.T) {
	a := newAPI(t)
	b := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	body := clinicBody()

	// Creating a clinic inserts the owner's membership, which takes a KEY
	// SHARE lock on the user's row.
	inFlightElsewhere(t, a, b, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userOf(t, owner),
		"/v1/clinics", owner, body)
	if n := count(t, `SELECT count(*) FROM clinics WHERE name = $1`, body["name"]); n != 1 {
		t.Errorf("%d clinics, want 1", n)
	}
}

// inFlightElsewhere holds a row lock taken by lockQuery(lockArg) in a
// transaction of its own while instance a runs POST path with a fresh key,
// until a's request waits for that lock; then the same request on instance b
// must be 409 idempotency_key_in_flight with Retry-After: 1. It commits,
// checks a's answer (201) and that b's retry replays it.
func inFlightElsewhere(t *testing.T, a, b *api, lockQuery string, lockArg any, path, apiKey string, body any) {
	t.Helper()
	k := uuid.NewString()
	ctx := context.Background()
	tx, err := dbtest.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op once committed; releases the lock if the test fails first
	var lockerPID int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&lockerPID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, lockQuery, lockArg); err != nil {
		t.Fatal(err)
	}

	type answer struct {
		r   response
		err error
	}
	done := make(chan answer, 1)
	req := a.request("POST", path, apiKey, body, idemKey, k)
	go func() {
		r, err := send(req)
		done <- answer{r, err}
	}()

	// Wait until a's transaction waits for the lock.
	deadline := time.Now().Add(10 * time.Second)
	for count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND $1 = ANY(pg_blocking_pids(pid))`,
		lockerPID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("A's request never waited for the lock")
		}
		select {
		case ans := <-done:
			t.Fatalf("A answered without waiting for the lock: %v %d %s", ans.err, ans.r.StatusCode, ans.r.raw)
		case <-time.After(10 * time.Millisecond):
		}
	}

	busy := b.call("POST", path, apiKey, body, idemKey, k).wantProblem(t, http.StatusConflict, "idempotency_key_in_flight")
	if ra := busy.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want \"1\"", ra)
	}
	wantFresh(t, busy)

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var ans answer
	select {
	case ans = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("A never answered")
	}
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	original := ans.r.want(t, http.StatusCreated)
	wantFresh(t, original)
	wantReplay(t, original, b.call("POST", path, apiKey, body, idemKey, k))
	if n := keyRows(t, apiKey, k); n != 1 {
		t.Errorf("%d idempotency_keys rows, want 1", n)
	}
}

// Keys expire after the executor's TTL: before expiry a retry replays and
// another body is 422; after it, the same key and body run anew (a second
// patient, no replay header, the key's one row now holding the new outcome)
// and the key is accepted with another body too.
func TestIdempotencyKeyExpiry(t *testing.T) {
	const ttl = time.Second
	a := newAPIWith(t, handlers.Config{}, actors.WithIdempotencyTTL(ttl))
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	path := "/v1/clinics/" + clinicID + "/patients"
	k1, k2 := uuid.NewString(), uuid.NewString()
	eva := map[string]any{"first_name": "Eva", "last_name": "Ruiz"}
	ana := map[string]any{"first_name": "Ana", "last_name": "Gil"}

	first := a.call("POST", path, owner, eva, idemKey, k1).want(t, http.StatusCreated)
	a.call("POST", path, owner, eva, idemKey, k2).want(t, http.StatusCreated)
	wantReplay(t, first, a.call("POST", path, owner, eva, idemKey, k1))
	a.call("POST", path, owner, ana, idemKey, k2).wantProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
	unexpired := func() int {
		return count(t, `SELECT count(*) FROM idempotency_keys WHERE user_id = $1 AND key IN ($2, $3) AND expires_at > now()`,
			userOf(t, owner), k1, k2)
	}
	if n := unexpired(); n != 2 {
		t.Fatalf("%d unexpired keys after the replays, want 2: the TTL ran out during the test's first steps", n)
	}

	// Wait until the database (whose clock stamps expires_at) says both
	// expired.
	deadline := time.Now().Add(10 * time.Second)
	for unexpired() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("keys never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}

	anew := a.call("POST", path, owner, eva, idemKey, k1).want(t, http.StatusCreated)
	wantFresh(t, anew)
	if anew.str("id") == first.str("id") {
		t.Errorf("the expired key replayed patient %s", first.str("id"))
	}
	other := a.call("POST", path, owner, ana, idemKey, k2).want(t, http.StatusCreated)
	wantFresh(t, other)
	if other.str("last_name") != "Gil" {
		t.Errorf("created %s", other.raw)
	}
	if n := patientRows(t, clinicID); n != 4 {
		t.Errorf("%d patients, want 4", n)
	}
	if n := keyRows(t, owner, k1); n != 1 {
		t.Errorf("%d rows for the reused key, want 1", n)
	}
	// The fresh outcome is the one replayed now.
	wantReplay(t, anew, a.call("POST", path, owner, eva, idemKey, k1))
}

// postRoute is a POST route, with a body it accepts.
type postRoute struct {
	path string
	body func() any
}

// postRoutes are every POST route of the API, for the clinic clinicID.
func postRoutes(t *testing.T, clinicID string) []postRoute {
	return []postRoute{
		{"/v1/api-keys", func() any { return map[string]any{"name": "ci"} }},
		{"/v1/clinics", func() any { return clinicBody() }},
		{"/v1/clinics/" + clinicID + "/members", func() any { return map[string]any{"email": email(t, "m"), "role": "billing"} }},
		{"/v1/clinics/" + clinicID + "/patients", func() any { return map[string]any{"first_name": "Eva", "last_name": "Ruiz"} }},
	}
}

// Every POST route requires the key (400 idempotency_key_missing) and
// rejects malformed ones (400 idempotency_key_invalid): empty, 256
// characters, non-ASCII, a control character, an unterminated or badly
// escaped structured-field string, two header lines. Nothing is created.
func TestIdempotencyKeyHeaderRequired(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	invalid := []struct{ name, value string }{
		{"empty", ""},
		{"256 characters", strings.Repeat("k", 256)},
		{"non-ASCII", "café"},
		{"control character", "a\tb"},
		{"unterminated string", `"unterminated`},
		{"bad escape", `"bad\x"`},
		{"empty string", `""`},
		{"unescaped quote", `"a"b"`},
		{"string of 256", `"` + strings.Repeat("k", 256) + `"`},
	}
	for _, rt := range postRoutes(t, clinicID) {
		a.call("POST", rt.path, owner, rt.body(), idemKey, noHeader).
			wantProblem(t, http.StatusBadRequest, "idempotency_key_missing")
		for _, c := range invalid {
			r := a.call("POST", rt.path, owner, rt.body(), idemKey, c.value)
			if r.body["code"] != "idempotency_key_invalid" {
				t.Errorf("%s with %s key %q: %d %s", rt.path, c.name, c.value, r.StatusCode, r.raw)
				continue
			}
			r.wantProblem(t, http.StatusBadRequest, "idempotency_key_invalid")
		}
		req := a.request("POST", rt.path, owner, rt.body(), idemKey, "one")
		req.Header.Add(idemKey, "two")
		a.do(req).wantProblem(t, http.StatusBadRequest, "idempotency_key_invalid")
	}
	user := userOf(t, owner)
	if n := count(t, `SELECT count(*) FROM idempotency_keys WHERE user_id = $1`, user); n != 1 {
		t.Errorf("%d keys stored, want 1 (newClinic's)", n)
	}
	if n := count(t, `SELECT count(*) FROM api_keys WHERE user_id = $1`, user); n != 1 {
		t.Errorf("%d API keys, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM members WHERE user_id = $1`, user); n != 1 {
		t.Errorf("member of %d clinics, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM members WHERE clinic_id = $1`, clinicID); n != 1 {
		t.Errorf("%d members, want 1", n)
	}
	if n := patientRows(t, clinicID); n != 0 {
		t.Errorf("%d patients, want 0", n)
	}
}

// Valid keys: 255 characters; a structured-field string "abc", which is the
// same key as bare abc (the second replays the first); "a\"b", the same key
// as bare a"b.
func TestIdempotencyKeyValidForms(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	path := "/v1/clinics/" + clinicID + "/patients"
	body := map[string]any{"first_name": "Eva", "last_name": "Ruiz"}

	long := strings.Repeat("k", 255)
	wantFresh(t, a.call("POST", path, owner, body, idemKey, long).want(t, http.StatusCreated))
	if n := keyRows(t, owner, long); n != 1 {
		t.Errorf("255-character key: %d rows, want 1", n)
	}

	for _, c := range []struct{ quoted, bare string }{{`"abc"`, "abc"}, {`"a\"b"`, `a"b`}, {`"a\\b"`, `a\b`}} {
		first := a.call("POST", path, owner, body, idemKey, c.quoted).want(t, http.StatusCreated)
		wantFresh(t, first)
		wantReplay(t, first, a.call("POST", path, owner, body, idemKey, c.bare))
		if n := keyRows(t, owner, c.bare); n != 1 {
			t.Errorf("key %s stored as %q: %d rows, want 1", c.quoted, c.bare, n)
		}
	}
	if n := patientRows(t, clinicID); n != 4 {
		t.Errorf("%d patients, want 4", n)
	}
}

// The key is checked after authentication and membership: without the key,
// no credentials is still 401, a non-member still 404 clinic_not_found (the
// clinic's existence does not leak), a role without the permission still 403.
func TestIdempotencyKeyCheckedAfterAccess(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	stranger := a.newUser(email(t, "stranger"))
	reception := a.newMember(owner, clinicID, "reception")

	for _, rt := range postRoutes(t, clinicID) {
		a.call("POST", rt.path, "", rt.body(), idemKey, noHeader).wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		a.call("POST", rt.path, "aura_not-a-key", rt.body(), idemKey, noHeader).
			wantProblem(t, http.StatusUnauthorized, "invalid_api_key")
	}
	for _, p := range []string{"/members", "/patients"} {
		a.call("POST", "/v1/clinics/"+clinicID+p, stranger, map[string]any{}, idemKey, noHeader).
			wantProblem(t, http.StatusNotFound, "clinic_not_found")
		a.call("POST", "/v1/clinics/"+uuid.NewString()+p, owner, map[string]any{}, idemKey, noHeader).
			wantProblem(t, http.StatusNotFound, "clinic_not_found")
	}
	a.call("POST", "/v1/clinics/"+clinicID+"/members", reception, map[string]any{}, idemKey, noHeader).
		wantProblem(t, http.StatusForbidden, "forbidden")
}

// GET, PATCH and DELETE need no key: each succeeds without one.
func TestIdempotencyKeyOnlyOnPost(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	p := a.newPatient(owner, clinicID, "Eva", "Ruiz")
	patient := "/v1/clinics/" + clinicID + "/patients/" + p.str("id")
	spare := a.call("POST", "/v1/api-keys", owner, map[string]any{"name": "spare"}).want(t, http.StatusCreated)

	for _, path := range []string{"/v1/api-keys", "/v1/clinics", "/v1/clinics/" + clinicID, "/v1/clinics/" + clinicID + "/members",
		"/v1/clinics/" + clinicID + "/patients", patient} {
		a.call("GET", path, owner, nil, idemKey, noHeader).want(t, http.StatusOK)
	}
	patched := a.call("PATCH", patient, owner, map[string]any{"notes": "no key needed"}, idemKey, noHeader).want(t, http.StatusOK)
	if patched.str("notes") != "no key needed" {
		t.Errorf("patched %s", patched.raw)
	}
	a.call("DELETE", "/v1/api-keys/"+spare.str("id"), owner, nil, idemKey, noHeader).want(t, http.StatusNoContent)
}

// execSQL runs a statement on the package's database.
func execSQL(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := dbtest.Pool(t).Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// failInserts makes every insert into table whose column matches value
// fail, until the returned function (also run at cleanup) undoes it.
func failInserts(t *testing.T, table, column, value string) (undo func()) {
	t.Helper()
	fn := "fail_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	execSQL(t, `CREATE FUNCTION `+fn+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure'; END $$`)
	execSQL(t, `CREATE TRIGGER `+fn+` BEFORE INSERT ON `+table+` FOR EACH ROW
		WHEN (NEW.`+column+` = '`+value+`') EXECUTE FUNCTION `+fn+`()`)
	var once sync.Once
	undo = func() {
		once.Do(func() {
			execSQL(t, `DROP TRIGGER `+fn+` ON `+table)
			execSQL(t, `DROP FUNCTION `+fn+`()`)
		})
	}
	t.Cleanup(undo)
	return undo
}

// The outcome and the write it describes commit together or not at all:
// when storing the key fails, the patient is not created either (500, no
// row of either); when the write fails, no outcome is stored (a 5xx is not
// stored); in both cases the same key then runs afresh.
func TestIdempotencyOutcomeAtomicWithWrite(t *testing.T) {
	a := newAPI(t)
	owner := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(owner)
	path := "/v1/clinics/" + clinicID + "/patients"
	body := map[string]any{"first_name": "Eva", "last_name": "Ruiz"}

	k := uuid.NewString()
	undo := failInserts(t, "idempotency_keys", "key", k)
	a.call("POST", path, owner, body, idemKey, k).wantProblem(t, http.StatusInternalServerError, "internal_error")
	if n := patientRows(t, clinicID); n != 0 {
		t.Errorf("the patient was committed without its key: %d patients", n)
	}
	undo()
	wantFresh(t, a.call("POST", path, owner, body, idemKey, k).want(t, http.StatusCreated))
	if n, m := patientRows(t, clinicID), keyRows(t, owner, k); n != 1 || m != 1 {
		t.Errorf("%d patients and %d rows of the key, want 1 and 1", n, m)
	}

	k2 := uuid.NewString()
	undo = failInserts(t, "patients", "last_name", "Atomic")
	failing := map[string]any{"first_name": "Eva", "last_name": "Atomic"}
	a.call("POST", path, owner, failing, idemKey, k2).wantProblem(t, http.StatusInternalServerError, "internal_error")
	if n := keyRows(t, owner, k2); n != 0 {
		t.Errorf("the key was stored for a failed write: %d rows", n)
	}
	undo()
	wantFresh(t, a.call("POST", path, owner, failing, idemKey, k2).want(t, http.StatusCreated))
	if n := patientRows(t, clinicID); n != 2 {
		t.Errorf("%d patients, want 2", n)
	}
}
