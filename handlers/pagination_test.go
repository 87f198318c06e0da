package handlers_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/schema/dbtest"
)

// seedPatients creates n patients in the clinic, one after the other, and
// returns their ids in creation order.
func (a *api) seedPatients(key, clinicID string, n int) []string {
	a.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = a.newPatient(key, clinicID, "Patient", fmt.Sprintf("No%03d", i)).str("id")
	}
	return ids
}

// page fetches one page of path and checks the list shape: data is an
// array, has_more a boolean, and next_cursor a string exactly when has_more.
func (a *api) page(key, path string, limit int, cursor string) (ids []string, next string, hasMore bool) {
	a.t.Helper()
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	r := a.call("GET", path+"?"+q.Encode(), key, nil).want(a.t, http.StatusOK)
	if _, ok := r.body["data"].([]any); !ok {
		a.t.Fatalf("data is not an array: %s", r.raw)
	}
	hasMore, ok := r.body["has_more"].(bool)
	if !ok {
		a.t.Fatalf("has_more is not a boolean: %s", r.raw)
	}
	raw, present := r.body["next_cursor"]
	next, _ = raw.(string)
	switch {
	case !present:
		a.t.Fatalf("next_cursor missing: %s", r.raw)
	case hasMore && next == "":
		a.t.Fatalf("has_more without a next_cursor: %s", r.raw)
	case !hasMore && raw != nil:
		a.t.Fatalf("last page with next_cursor %v, want null: %s", raw, r.raw)
	}
	return r.ids("id"), next, hasMore
}

// walk follows next_cursor from the first page to the last, calling between
// (when not nil) after each page but the last, and returns every id seen and
// the number of pages.
func (a *api) walk(key, path string, limit int, between func()) (ids []string, pages int) {
	a.t.Helper()
	cursor := ""
	for {
		got, next, more := a.page(key, path, limit, cursor)
		ids = append(ids, got...)
		pages++
		if limit > 0 && len(got) > limit {
			a.t.Fatalf("page of %d items with limit %d", len(got), limit)
		}
		if !more {
			return ids, pages
		}
		if pages > 1000 {
			a.t.Fatal("pagination does not end")
		}
		if between != nil {
			between()
		}
		cursor = next
	}
}

// Without ?limit= a page holds 20 items; 1 and 100 are accepted.
func TestPaginationLimits(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	path := "/v1/clinics/" + clinicID + "/patients"

	ids, _, more := a.page(key, path, 0, "")
	if len(ids) != 0 || more {
		t.Errorf("empty clinic: %d items, has_more %v", len(ids), more)
	}
	all := a.seedPatients(key, clinicID, 25)

	ids, _, more = a.page(key, path, 0, "")
	if len(ids) != 20 || !more {
		t.Errorf("default page: %d items, has_more %v; want 20, true", len(ids), more)
	}
	ids, _, more = a.page(key, path, 1, "")
	if len(ids) != 1 || ids[0] != all[0] || !more {
		t.Errorf("limit=1: %v, has_more %v", ids, more)
	}
	ids, _, more = a.page(key, path, 100, "")
	if len(ids) != 25 || more {
		t.Errorf("limit=100: %d items, has_more %v; want 25, false", len(ids), more)
	}
}

// limit outside 1–100 or not an integer, and a cursor this API did not
// issue, are 400 invalid_parameter, on every list.
func TestPaginationInvalidParameters(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	lists := []string{
		"/v1/clinics/" + clinicID + "/patients",
		"/v1/clinics/" + clinicID + "/members",
		"/v1/clinics",
		"/v1/api-keys",
	}
	uuidBytes := uuid.New()
	params := []string{
		"limit=0", "limit=101", "limit=-1", "limit=x", "limit=1.5", "limit=1e2", "limit=99999999999999999999",
		"cursor=!!!", "cursor=AAAA", "cursor=" + base64.StdEncoding.EncodeToString(uuidBytes[:]), // padded, not URL-safe raw
		"cursor=" + base64.RawURLEncoding.EncodeToString(append(uuidBytes[:], 0)), // 17 bytes
	}
	for _, list := range lists {
		for _, p := range params {
			a.call("GET", list+"?"+p, key, nil).wantProblem(t, http.StatusBadRequest, "invalid_parameter")
		}
	}
}

// Following next_cursor visits every patient exactly once, in creation
// order, and the last page says has_more false with next_cursor null, also
// when the count is a multiple of the page size (no empty trailing page).
func TestPaginationWalk(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	path := "/v1/clinics/" + clinicID + "/patients"
	created := a.seedPatients(key, clinicID, 21)

	for _, c := range []struct{ limit, pages int }{{7, 3}, {5, 5}, {20, 2}, {21, 1}, {1, 21}} {
		got, pages := a.walk(key, path, c.limit, nil)
		if fmt.Sprint(got) != fmt.Sprint(created) {
			t.Errorf("limit %d: walked %v, want %v", c.limit, got, created)
		}
		if pages != c.pages {
			t.Errorf("limit %d: %d pages, want %d", c.limit, pages, c.pages)
		}
	}
}

// A walk stays correct while patients are created between page fetches:
// every patient that existed when the walk began is seen exactly once and no
// id is seen twice. Besides new patients through the API (whose ids sort
// last), rows are inserted whose ids sort before the page already read, as a
// write committed late by another instance would be: an offset-based cursor
// would then show some items twice.
func TestPaginationStableUnderInserts(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinicID := a.newClinic(key)
	path := "/v1/clinics/" + clinicID + "/patients"
	before := a.seedPatients(key, clinicID, 17)

	inserted := 0
	got, _ := a.walk(key, path, 4, func() {
		a.seedPatients(key, clinicID, 3)
		early := uuid.New()
		early[0] = 0 // sorts before every UUIDv7 of this century
		if _, err := dbtest.Pool(t).Exec(context.Background(),
			`INSERT INTO patients (id, clinic_id, first_name, last_name) VALUES ($1, $2, 'Late', 'Writer')`, early, clinicID); err != nil {
			t.Fatal(err)
		}
		inserted += 4
	})
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
		if seen[id] > 1 {
			t.Errorf("patient %s seen twice", id)
		}
	}
	for _, id := range before {
		if seen[id] != 1 {
			t.Errorf("patient %s, present before the walk, seen %d times", id, seen[id])
		}
	}
	if inserted == 0 {
		t.Fatal("no insert happened during the walk")
	}
	if fmt.Sprint(got[:len(before)]) != fmt.Sprint(before) {
		t.Errorf("walk does not start with the earlier patients in order: %v", got)
	}
}
