package handlers_test

import (
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/ratelimit"
	"github.com/aura-clinic/aura/handlers"
)

// unbound is a rate no test comes near: the policies a test does not name.
const unbound = "100000/s"

// limits returns rate limits in which only the binding policies (e.g.
// "user.write=3/m") can refuse anything: every other scope and class gets
// the unbound rate, so each test isolates the policies it names.
func limits(t *testing.T, binding ...string) ratelimit.Limits {
	t.Helper()
	var items []string
	for _, scope := range []string{"ip", "user", "clinic"} {
		for _, class := range []string{"read", "write", "payments"} {
			items = append(items, scope+"."+class+"="+unbound)
		}
	}
	l, err := ratelimit.Parse(strings.Join(append(items, binding...), ","))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// clinicFixture is a clinic with its owner and a reception member (both may
// write patients), created through an API without limits so that the setup
// spends nothing from the buckets of the API under test.
type clinicFixture struct {
	owner, reception, clinicID, patients string
}

func newClinicFixture(t *testing.T) clinicFixture {
	t.Helper()
	setup := newAPI(t)
	owner := setup.newUser(email(t, "owner"))
	clinicID := setup.newClinic(owner)
	return clinicFixture{
		owner:     owner,
		reception: setup.newMember(owner, clinicID, "reception"),
		clinicID:  clinicID,
		patients:  "/v1/clinics/" + clinicID + "/patients",
	}
}

// patient is a valid patient creation body.
func patient() map[string]any {
	return map[string]any{"first_name": "Eva", "last_name": "Ruiz"}
}

// rateLimitRE is the RateLimit header of draft-10 for one policy.
var rateLimitRE = regexp.MustCompile(`^"([a-z]+-[a-z]+)";r=(\d+);t=(\d+)$`)

// rateLimit is a parsed RateLimit header: `"name";r=remaining;t=reset`.
type rateLimit struct {
	name             string
	remaining, reset int
}

// rateLimitOf parses r's RateLimit header, failing the test if it is
// missing or malformed.
func rateLimitOf(t *testing.T, r response) rateLimit {
	t.Helper()
	h := r.Header.Get(handlers.RateLimitHeader)
	m := rateLimitRE.FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("%s %s (%d): RateLimit %q, want \"name\";r=N;t=N", r.Request.Method, r.Request.URL.Path, r.StatusCode, h)
	}
	remaining, _ := strconv.Atoi(m[2])
	reset, _ := strconv.Atoi(m[3])
	return rateLimit{name: m[1], remaining: remaining, reset: reset}
}

// wantPolicy checks r's RateLimit-Policy header: name with quota q over a
// window of w seconds.
func wantPolicy(t *testing.T, r response, name string, q, w int) {
	t.Helper()
	want := `"` + name + `";q=` + strconv.Itoa(q) + ";w=" + strconv.Itoa(w)
	if got := r.Header.Get(handlers.RateLimitPolicyHeader); got != want {
		t.Errorf("%s %s (%d): RateLimit-Policy %q, want %q", r.Request.Method, r.Request.URL.Path, r.StatusCode, got, want)
	}
}

// wantRemaining checks that r reports policy name with remaining requests
// left.
func wantRemaining(t *testing.T, r response, name string, remaining int) {
	t.Helper()
	rl := rateLimitOf(t, r)
	if rl.name != name || rl.remaining != remaining {
		t.Errorf("%s %s (%d): RateLimit %q, want policy %q with r=%d", r.Request.Method, r.Request.URL.Path,
			r.StatusCode, r.Header.Get(handlers.RateLimitHeader), name, remaining)
	}
}

// wantNoRateHeaders fails the test if r carries any rate-limit header.
func wantNoRateHeaders(t *testing.T, r response) {
	t.Helper()
	for _, h := range []string{handlers.RateLimitHeader, handlers.RateLimitPolicyHeader, "Retry-After"} {
		if v := r.Header.Values(h); v != nil {
			t.Errorf("%s %s (%d): %s %q, want none", r.Request.Method, r.Request.URL.Path, r.StatusCode, h, v)
		}
	}
}

// wantLimited checks a 429: an RFC 9457 rate_limited problem whose
// violated_policies are exactly violated (in any order), with Retry-After a
// positive whole number of seconds and RateLimit reporting one of the
// violated policies with r=0. It returns Retry-After.
func wantLimited(t *testing.T, r response, violated ...string) int {
	t.Helper()
	r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
	var got []string
	list, ok := r.body["violated_policies"].([]any)
	if !ok {
		t.Errorf("violated_policies missing or not a list: %s", r.raw)
	}
	for _, v := range list {
		s, _ := v.(string)
		got = append(got, s)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(violated))
	if !slices.Equal(got, want) {
		t.Errorf("violated_policies %q, want %q", got, want)
	}
	ra := r.Header.Get("Retry-After")
	secs, err := strconv.Atoi(ra)
	if err != nil || secs < 1 || strconv.Itoa(secs) != ra {
		t.Errorf("Retry-After %q, want a positive whole number of seconds", ra)
	}
	rl := rateLimitOf(t, r)
	if rl.remaining != 0 || !slices.Contains(violated, rl.name) {
		t.Errorf("RateLimit %q on a 429, want r=0 for one of %q", r.Header.Get(handlers.RateLimitHeader), violated)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a 429, want no-store", cc)
	}
	return secs
}

// With only ip.read bound, reads (GET and HEAD alike) are refused once it is
// spent while writes from the same address still pass.
func TestRateLimitIPReadExhaustedWritesPass(t *testing.T) {
	a := newLimitedAPI(t, limits(t, "ip.read=3/m"))
	key := a.newUser(email(t, "user"))

	for i := range 3 {
		r := a.call("GET", "/v1/clinics", key, nil).want(t, http.StatusOK)
		wantRemaining(t, r, "ip-read", 2-i)
	}
	wantLimited(t, a.call("GET", "/v1/clinics", key, nil), "ip-read")
	head := a.call("HEAD", "/v1/clinics", key, nil).want(t, http.StatusTooManyRequests)
	wantRemaining(t, head, "ip-read", 0)

	a.call("POST", "/v1/clinics", key, clinicBody()).want(t, http.StatusCreated)
	a.call("DELETE", "/v1/api-keys/"+uuid.NewString(), key, nil).wantProblem(t, http.StatusNotFound, "api_key_not_found")
}

// With only ip.write bound, every non-read method is refused once it is
// spent (POST and DELETE share the bucket) while GET and HEAD still pass.
func TestRateLimitIPWriteExhaustedReadsPass(t *testing.T) {
	a := newLimitedAPI(t, limits(t, "ip.write=2/m"))
	key := a.newUser(email(t, "user"))

	for i := range 2 {
		r := a.call("POST", "/v1/clinics", key, clinicBody()).want(t, http.StatusCreated)
		wantRemaining(t, r, "ip-write", 1-i)
	}
	wantLimited(t, a.call("POST", "/v1/clinics", key, clinicBody()), "ip-write")
	wantLimited(t, a.call("DELETE", "/v1/api-keys/"+uuid.NewString(), key, nil), "ip-write")

	if n := len(a.call("GET", "/v1/clinics", key, nil).want(t, http.StatusOK).items()); n != 2 {
		t.Errorf("%d clinics listed, want 2 (the refused POSTs created none)", n)
	}
	a.call("HEAD", "/v1/clinics", key, nil).want(t, http.StatusOK)
}

// On a clinic route each user has a bucket of their own, so one user's
// exhaustion does not refuse another member of the same clinic; the clinic
// bucket is shared, and a request refused by the user bucket takes nothing
// from it. With user.write=3/m and clinic.write=5/m: A spends 3 (the 4th is
// refused as user-write), B gets the clinic's remaining 2, then B and any
// other member are refused as clinic-write. Reads stay open throughout.
func TestRateLimitUserScopeInClinic(t *testing.T) {
	f := newClinicFixture(t)
	a := newLimitedAPI(t, limits(t, "user.write=3/m", "clinic.write=5/m"))

	for range 3 {
		a.call("POST", f.patients, f.owner, patient()).want(t, http.StatusCreated)
	}
	wantLimited(t, a.call("POST", f.patients, f.owner, patient()), "user-write")

	for range 2 {
		a.call("POST", f.patients, f.reception, patient()).want(t, http.StatusCreated)
	}
	wantLimited(t, a.call("POST", f.patients, f.reception, patient()), "clinic-write")
	wantLimited(t, a.call("POST", f.patients, f.owner, patient()), "user-write", "clinic-write")

	if n := patientRows(t, f.clinicID); n != 5 {
		t.Errorf("%d patients, want 5 (the quota of the clinic)", n)
	}
	a.call("GET", f.patients, f.owner, nil).want(t, http.StatusOK)
	a.call("GET", f.patients, f.reception, nil).want(t, http.StatusOK)
}

// The clinic bucket belongs to one clinic: once clinic X has spent
// clinic.write, the same user still writes in clinic Y, and X still reads.
func TestRateLimitClinicsIsolated(t *testing.T) {
	setup := newAPI(t)
	owner := setup.newUser(email(t, "owner"))
	x, y := setup.newClinic(owner), setup.newClinic(owner)
	a := newLimitedAPI(t, limits(t, "clinic.write=2/m"))

	for range 2 {
		a.call("POST", "/v1/clinics/"+x+"/patients", owner, patient()).want(t, http.StatusCreated)
	}
	wantLimited(t, a.call("POST", "/v1/clinics/"+x+"/patients", owner, patient()), "clinic-write")

	r := a.call("POST", "/v1/clinics/"+y+"/patients", owner, patient()).want(t, http.StatusCreated)
	wantRemaining(t, r, "clinic-write", 1)
	a.call("GET", "/v1/clinics/"+x+"/patients", owner, nil).want(t, http.StatusOK)
}

// Routes outside a clinic count against the user's bucket at the edge:
// with user.write=2/m two POST /v1/clinics pass, the third is refused as
// user-write, and so is another write outside a clinic (POST /v1/api-keys);
// the user's reads and another user's writes still pass.
func TestRateLimitUserOutsideClinic(t *testing.T) {
	a := newLimitedAPI(t, limits(t, "user.write=2/m"))
	key := a.newUser(email(t, "user"))
	other := a.newUser(email(t, "other"))

	for i := range 2 {
		r := a.call("POST", "/v1/clinics", key, clinicBody()).want(t, http.StatusCreated)
		wantPolicy(t, r, "user-write", 2, 60)
		wantRemaining(t, r, "user-write", 1-i)
	}
	wantLimited(t, a.call("POST", "/v1/clinics", key, clinicBody()), "user-write")
	wantLimited(t, a.call("POST", "/v1/api-keys", key, map[string]any{"name": "ci"}), "user-write")

	a.call("GET", "/v1/clinics", key, nil).want(t, http.StatusOK)
	a.call("POST", "/v1/clinics", other, clinicBody()).want(t, http.StatusCreated)
}

// Allowed responses report the most restrictive applicable policy: with
// ip.write=6/m, user.write=5/m and clinic.write=8/m on a clinic route that
// is user-write (fewest left relative to its quota). RateLimit-Policy is
// `"user-write";q=5;w=60`; RateLimit's r falls by one per request and t is
// the time until the quota is whole again (12 s a request). The 6th request
// is refused with r=0.
func TestRateLimitHeadersMostRestrictive(t *testing.T) {
	f := newClinicFixture(t)
	a := newLimitedAPI(t, limits(t, "ip.write=6/m", "user.write=5/m", "clinic.write=8/m"))

	start := time.Now()
	for i := range 5 {
		r := a.call("POST", f.patients, f.owner, patient()).want(t, http.StatusCreated)
		elapsed := int(math.Ceil(time.Since(start).Seconds()))
		wantPolicy(t, r, "user-write", 5, 60)
		rl := rateLimitOf(t, r)
		if rl.name != "user-write" || rl.remaining != 4-i {
			t.Errorf("request %d: RateLimit %q, want \"user-write\" with r=%d", i+1, r.Header.Get(handlers.RateLimitHeader), 4-i)
		}
		if full := 12 * (i + 1); rl.reset > full || rl.reset < full-elapsed {
			t.Errorf("request %d: RateLimit t=%d, want %d (less at most the %d s the test has run)", i+1, rl.reset, full, elapsed)
		}
	}
	r := a.call("POST", f.patients, f.owner, patient())
	wantLimited(t, r, "user-write")
	wantPolicy(t, r, "user-write", 5, 60)
}

// Error responses carry the headers too, for whatever the request was
// counted against: a router 404 and a 401 the ip bucket (the only one
// applied before authentication), a 422 on a clinic route the user bucket.
func TestRateLimitHeadersOnErrors(t *testing.T) {
	f := newClinicFixture(t)
	a := newLimitedAPI(t, limits(t, "ip.read=50/m", "user.write=5/m"))

	r := a.call("GET", "/v1/no-such-route", "", nil).wantProblem(t, http.StatusNotFound, "route_not_found")
	wantPolicy(t, r, "ip-read", 50, 60)
	wantRemaining(t, r, "ip-read", 49)

	r = a.call("GET", "/v1/clinics", "", nil).wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	wantPolicy(t, r, "ip-read", 50, 60)
	wantRemaining(t, r, "ip-read", 48)

	r = a.call("POST", f.patients, f.owner, map[string]any{"first_name": "Eva"}).wantFieldError(t, "/last_name", "required")
	wantPolicy(t, r, "user-write", 5, 60)
	wantRemaining(t, r, "user-write", 4)
}

// With limits off (the zero config, or AURA_RATE_LIMITS=off) no response
// carries a rate-limit header, whether it succeeds or fails.
func TestRateLimitHeadersAbsentWhenOff(t *testing.T) {
	off, err := ratelimit.Parse("off")
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]*api{"zero config": newAPI(t), "off": newLimitedAPI(t, off)} {
		t.Run(name, func(t *testing.T) {
			a := a.on(t)
			key := a.newUser(email(t, "owner"))
			clinicID := a.newClinic(key)
			patients := "/v1/clinics/" + clinicID + "/patients"
			for _, r := range []response{
				a.call("GET", "/v1/clinics", key, nil).want(t, http.StatusOK),
				a.call("POST", patients, key, patient()).want(t, http.StatusCreated),
				a.call("GET", patients, key, nil).want(t, http.StatusOK),
				a.call("POST", patients, key, map[string]any{}).want(t, http.StatusUnprocessableEntity),
				a.call("GET", "/v1/no-such-route", key, nil).want(t, http.StatusNotFound),
				a.call("GET", "/v1/clinics", "", nil).want(t, http.StatusUnauthorized),
			} {
				wantNoRateHeaders(t, r)
			}
		})
	}
}

// Retry-After is for refusals only: responses that passed every limit, at
// the edge or in the clinic actor, successful or not, carry none. (Each
// request's rate state starts as the zero Decision, whose Allowed is false,
// and Merge keeps it false, so every counted response says Retry-After: 0
// until withRequestID starts it as allowed.)
func TestRateLimitRetryAfterOnlyOnRefusal(t *testing.T) {
	f := newClinicFixture(t)
	a := newLimitedAPI(t, limits(t, "user.write=5/m"))
	for _, r := range []response{
		a.call("GET", "/healthz", "", nil).want(t, http.StatusOK),
		a.call("GET", "/v1/clinics", f.owner, nil).want(t, http.StatusOK),
		a.call("POST", f.patients, f.owner, patient()).want(t, http.StatusCreated),
		a.call("POST", f.patients, f.owner, map[string]any{}).want(t, http.StatusUnprocessableEntity),
		a.call("GET", "/v1/no-such-route", "", nil).want(t, http.StatusNotFound),
	} {
		if v := r.Header.Values("Retry-After"); v != nil {
			t.Errorf("%s %s (%d): Retry-After %q on a request no limit refused", r.Request.Method, r.Request.URL.Path, r.StatusCode, v)
		}
	}
}

// The 429 is an RFC 9457 rate_limited problem listing every exhausted
// policy: with user.write=2/m and clinic.write=2/h both are spent by the
// same two requests, so the third names both; Retry-After waits for the
// later of the two (the clinic's 30 min, not the user's 30 s), and the
// headers report that policy with r=0.
func TestRateLimitRejectionBody(t *testing.T) {
	f := newClinicFixture(t)
	a := newLimitedAPI(t, limits(t, "user.write=2/m", "clinic.write=2/h"))

	start := time.Now()
	for range 2 {
		a.call("POST", f.patients, f.owner, patient()).want(t, http.StatusCreated)
	}
	r := a.call("POST", f.patients, f.owner, patient())
	elapsed := int(math.Ceil(time.Since(start).Seconds()))
	retry := wantLimited(t, r, "user-write", "clinic-write")
	if retry > 1800 || retry < 1800-elapsed {
		t.Errorf("Retry-After %d, want 1800 (the clinic's interval; less at most the %d s the test has run)", retry, elapsed)
	}
	wantPolicy(t, r, "clinic-write", 2, 3600)
	wantRemaining(t, r, "clinic-write", 0)
	if d := r.str("detail"); d == "" {
		t.Errorf("429 has no detail: %s", r.raw)
	}
}

// Waiting the Retry-After seconds is enough: with user.write=1/s the second
// request is refused with Retry-After 1, and the same request sent that
// many seconds later passes.
func TestRateLimitRetryAfterWait(t *testing.T) {
	f := newClinicFixture(t)
	a := newLimitedAPI(t, limits(t, "user.write=1/s"))

	a.call("POST", f.patients, f.owner, patient()).want(t, http.StatusCreated)
	retry := wantLimited(t, a.call("POST", f.patients, f.owner, patient()), "user-write")
	if retry != 1 {
		t.Fatalf("Retry-After %d, want 1", retry)
	}
	time.Sleep(time.Duration(retry) * time.Second)
	a.call("POST", f.patients, f.owner, patient()).want(t, http.StatusCreated)
}

// A request refused with 429 is not executed and stores no idempotency key
// (no idempotency_keys row, no patient), so after the wait the same request
// with the same Idempotency-Key runs fresh: 201 without Idempotent-Replayed.
func TestRateLimitRefusalStoresNoIdempotencyKey(t *testing.T) {
	f := newClinicFixture(t)
	a := newLimitedAPI(t, limits(t, "user.write=1/s"))
	body := map[string]any{"first_name": "Ana", "last_name": "Gil", "notes": "after the wait"}
	k := uuid.NewString()

	a.call("POST", f.patients, f.owner, patient()).want(t, http.StatusCreated)
	retry := wantLimited(t, a.call("POST", f.patients, f.owner, body, idemKey, k), "user-write")
	if n := keyRows(t, f.owner, k); n != 0 {
		t.Errorf("%d idempotency_keys rows after a 429, want 0", n)
	}
	if n := patientRows(t, f.clinicID); n != 1 {
		t.Errorf("%d patients after a 429, want 1", n)
	}

	time.Sleep(time.Duration(retry) * time.Second)
	r := a.call("POST", f.patients, f.owner, body, idemKey, k).want(t, http.StatusCreated)
	wantFresh(t, r)
	if r.str("notes") != "after the wait" {
		t.Errorf("created %s", r.raw)
	}
	if n := keyRows(t, f.owner, k); n != 1 {
		t.Errorf("%d idempotency_keys rows after the retry, want 1", n)
	}
	if n := patientRows(t, f.clinicID); n != 2 {
		t.Errorf("%d patients after the retry, want 2", n)
	}
}

// statuses counts the answers by status.
func statuses(answers []response) map[int]int {
	n := map[int]int{}
	for _, r := range answers {
		n[r.StatusCode]++
	}
	return n
}

// Concurrent requests never get past the quota at the edge: 50 GETs at once
// with ip.read=20/m give exactly 20 × 200 and 30 × 429 ip-read.
func TestRateLimitParallelIP(t *testing.T) {
	a := newLimitedAPI(t, limits(t, "ip.read=20/m"))
	key := a.newUser(email(t, "user"))
	reqs := make([]*http.Request, 50)
	for i := range reqs {
		reqs[i] = a.request("GET", "/v1/clinics", key, nil)
	}
	answers := concurrently(t, reqs)
	if got := statuses(answers); got[http.StatusOK] != 20 || got[http.StatusTooManyRequests] != 30 {
		t.Fatalf("statuses %v, want 20 × 200 and 30 × 429", got)
	}
	for _, r := range answers {
		if r.StatusCode == http.StatusTooManyRequests {
			wantLimited(t, r, "ip-read")
		}
	}
}

// Concurrent writes never get past the clinic's quota: 50 patient creations
// at once by two members with clinic.write=10/m give exactly 10 × 201 (10
// patients stored) and 40 × 429 clinic-write.
func TestRateLimitParallelClinic(t *testing.T) {
	f := newClinicFixture(t)
	a := newLimitedAPI(t, limits(t, "clinic.write=10/m"))
	reqs := make([]*http.Request, 50)
	for i := range reqs {
		key := f.owner
		if i%2 == 1 {
			key = f.reception
		}
		reqs[i] = a.request("POST", f.patients, key, patient())
	}
	answers := concurrently(t, reqs)
	if got := statuses(answers); got[http.StatusCreated] != 10 || got[http.StatusTooManyRequests] != 40 {
		t.Fatalf("statuses %v, want 10 × 201 and 40 × 429", got)
	}
	for _, r := range answers {
		if r.StatusCode == http.StatusTooManyRequests {
			wantLimited(t, r, "clinic-write")
		}
	}
	if n := patientRows(t, f.clinicID); n != 10 {
		t.Errorf("%d patients, want 10", n)
	}
}

// The ip bucket is spent before authentication: with ip.read=3/m, requests
// without a key or with a bad one use it up (3 × 401), and then even a valid
// key is refused.
func TestRateLimitIPBeforeAuthentication(t *testing.T) {
	a := newLimitedAPI(t, limits(t, "ip.read=3/m"))
	key := a.newUser(email(t, "user"))

	a.call("GET", "/v1/clinics", "", nil).wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	a.call("GET", "/v1/clinics", "aura_"+strings.Repeat("x", 43), nil).wantProblem(t, http.StatusUnauthorized, "invalid_api_key")
	r := a.call("GET", "/v1/clinics/"+uuid.NewString(), "not-a-key", nil).wantProblem(t, http.StatusUnauthorized, "invalid_api_key")
	wantRemaining(t, r, "ip-read", 0)
	wantLimited(t, a.call("GET", "/v1/clinics", key, nil), "ip-read")
}

// Requests no route serves count too: router 404s spend ip.read and 405s
// spend ip.write (by their method), and once spent they are answered 429.
func TestRateLimitUnroutedRequestsCount(t *testing.T) {
	a := newLimitedAPI(t, limits(t, "ip.read=2/m", "ip.write=1/m"))
	key := a.newUser(email(t, "user"))

	a.call("GET", "/v1/no-such-route", "", nil).wantProblem(t, http.StatusNotFound, "route_not_found")
	a.call("GET", "/nowhere", key, nil).wantProblem(t, http.StatusNotFound, "route_not_found")
	wantLimited(t, a.call("GET", "/v1/clinics", key, nil), "ip-read")
	wantLimited(t, a.call("GET", "/v1/no-such-route", "", nil), "ip-read")

	a.call("PUT", "/v1/clinics", key, clinicBody()).wantProblem(t, http.StatusMethodNotAllowed, "method_not_allowed")
	wantLimited(t, a.call("POST", "/v1/clinics", key, clinicBody()), "ip-write")
}

// forwarded calls GET /healthz as if through a proxy that set
// X-Forwarded-For to xff.
func forwarded(a *api, xff string) response {
	a.t.Helper()
	return a.call("GET", "/healthz", "", nil, "X-Forwarded-For", xff)
}

// Without trusted proxies X-Forwarded-For is ignored: requests claiming
// different client addresses all come from 127.0.0.1 and share its bucket.
func TestRateLimitForwardedForIgnoredByDefault(t *testing.T) {
	a := newLimitedAPI(t, limits(t, "ip.read=2/m"))

	forwarded(a, "10.0.0.1").want(t, http.StatusOK)
	forwarded(a, "10.0.0.2").want(t, http.StatusOK)
	wantLimited(t, forwarded(a, "10.0.0.3"), "ip-read")
	wantLimited(t, a.call("GET", "/healthz", "", nil), "ip-read")
}

// From a trusted proxy (127.0.0.0/8), the bucket is the right-most
// X-Forwarded-For address that is not itself a trusted proxy: two forwarded
// clients have separate buckets, neither shared with the proxy's own; a
// spoofed left-most entry ("1.2.3.4, 5.6.7.8") is keyed by 5.6.7.8, and
// trusted hops to the right of the client are skipped.
func TestRateLimitForwardedForFromTrustedProxy(t *testing.T) {
	proxies, err := handlers.ParseTrustedProxies("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	a := newLimitedAPI(t, limits(t, "ip.read=2/m"), proxies...)

	forwarded(a, "10.0.0.1").want(t, http.StatusOK)
	forwarded(a, "10.0.0.1").want(t, http.StatusOK)
	wantLimited(t, forwarded(a, "10.0.0.1"), "ip-read")
	wantRemaining(t, forwarded(a, "10.0.0.2").want(t, http.StatusOK), "ip-read", 1)
	wantRemaining(t, a.call("GET", "/healthz", "", nil).want(t, http.StatusOK), "ip-read", 1)

	wantRemaining(t, forwarded(a, "1.2.3.4, 5.6.7.8").want(t, http.StatusOK), "ip-read", 1)
	wantRemaining(t, forwarded(a, "9.9.9.9, 5.6.7.8, 127.0.0.2").want(t, http.StatusOK), "ip-read", 0)
	wantLimited(t, forwarded(a, "5.6.7.8"), "ip-read")
	wantRemaining(t, forwarded(a, "1.2.3.4").want(t, http.StatusOK), "ip-read", 1)
}
