package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// Requests without valid credentials are 401 problems with a
// WWW-Authenticate challenge: no header or a malformed one is
// unauthenticated, a well-formed but unknown key is invalid_api_key.
func TestUnauthenticated(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "user"))
	cases := []struct {
		name, authorization, code string
	}{
		{"missing", "", "unauthenticated"},
		{"basic scheme", "Basic dXNlcjpwYXNz", "unauthenticated"},
		{"key without scheme", key, "unauthenticated"},
		{"scheme without key", "Bearer", "unauthenticated"},
		{"scheme with blank key", "Bearer   ", "unauthenticated"},
		{"token scheme", "Token " + key, "unauthenticated"},
		{"unknown key", "Bearer aura_" + strings.Repeat("x", 43), "invalid_api_key"},
		{"key with a typo", "Bearer " + key[:len(key)-1] + "!", "invalid_api_key"},
		{"garbage key", "Bearer not-a-key", "invalid_api_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := a.on(t)
			for _, path := range []string{"/v1/clinics", "/v1/api-keys", "/v1/clinics/" + uuid.NewString() + "/patients"} {
				var headers []string
				if c.authorization != "" {
					headers = []string{"Authorization", c.authorization}
				}
				r := a.call("GET", path, "", nil, headers...).wantProblem(t, http.StatusUnauthorized, c.code)
				if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
					t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", path, h)
				}
			}
		})
	}
	// The scheme is case-insensitive (RFC 9110 §11.1).
	a.call("GET", "/v1/clinics", "", nil, "Authorization", "bearer "+key).want(t, http.StatusOK)
}

// POST /v1/api-keys shows the new key once, in full; GET /v1/api-keys lists
// the user's keys by prefix and never shows a secret or its hash.
func TestAPIKeysNeverListSecrets(t *testing.T) {
	a := newAPI(t)
	first := a.newUser(email(t, "user"))
	created := a.call("POST", "/v1/api-keys", first, map[string]any{"name": "ci"}).want(t, http.StatusCreated)
	second := created.str("key")
	if !strings.HasPrefix(second, "aura_") || len(second) < 40 {
		t.Fatalf("new key %q is not shown in full: %s", second, created.raw)
	}
	if !strings.HasPrefix(second, created.str("prefix")) || created.str("prefix") == second || created.str("name") != "ci" {
		t.Errorf("new key %s: prefix, name", created.raw)
	}
	if _, ok := created.body["secret_hash"]; ok {
		t.Errorf("create response has secret_hash: %s", created.raw)
	}
	// The shown key works.
	a.call("GET", "/v1/clinics", second, nil).want(t, http.StatusOK)

	list := a.call("GET", "/v1/api-keys", second, nil).want(t, http.StatusOK)
	items := list.items()
	if len(items) != 2 {
		t.Fatalf("%d keys listed, want 2: %s", len(items), list.raw)
	}
	for _, secret := range []string{first, second, "secret_hash", `"key"`} {
		if strings.Contains(string(list.raw), secret) {
			t.Errorf("key list contains %q: %s", secret, list.raw)
		}
	}
	prefixes := map[string]bool{}
	for _, k := range items {
		p, _ := k["prefix"].(string)
		prefixes[p] = true
		if _, ok := k["id"].(string); !ok {
			t.Errorf("key without id: %v", k)
		}
	}
	for _, key := range []string{first, second} {
		if !prefixes[key[:len("aura_")+8]] {
			t.Errorf("no listed key has the prefix of %s…: %s", key[:len("aura_")+8], list.raw)
		}
	}
}

// A revoked key gets 401 invalid_api_key from then on, while the user's
// other keys keep working; revoking is idempotent and the list shows when.
func TestRevokeAPIKey(t *testing.T) {
	a := newAPI(t)
	keep := a.newUser(email(t, "user"))
	doomed := a.call("POST", "/v1/api-keys", keep, nil).want(t, http.StatusCreated)
	doomedKey, doomedID := doomed.str("key"), doomed.str("id")
	a.call("GET", "/v1/clinics", doomedKey, nil).want(t, http.StatusOK)

	r := a.call("DELETE", "/v1/api-keys/"+doomedID, keep, nil).want(t, http.StatusNoContent)
	if len(r.raw) != 0 {
		t.Errorf("204 with a body: %s", r.raw)
	}
	for _, path := range []string{"/v1/clinics", "/v1/api-keys"} {
		a.call("GET", path, doomedKey, nil).wantProblem(t, http.StatusUnauthorized, "invalid_api_key")
	}
	a.call("GET", "/v1/clinics", keep, nil).want(t, http.StatusOK)
	a.call("DELETE", "/v1/api-keys/"+doomedID, keep, nil).want(t, http.StatusNoContent)

	for _, k := range a.call("GET", "/v1/api-keys", keep, nil).want(t, http.StatusOK).items() {
		revoked := k["revoked_at"] != nil
		if revoked != (k["id"] == doomedID) {
			t.Errorf("key %v: revoked_at %v", k["id"], k["revoked_at"])
		}
	}

	// A key may revoke itself; the request that does it still succeeds.
	self := a.call("POST", "/v1/api-keys", keep, nil).want(t, http.StatusCreated)
	a.call("DELETE", "/v1/api-keys/"+self.str("id"), self.str("key"), nil).want(t, http.StatusNoContent)
	a.call("GET", "/v1/clinics", self.str("key"), nil).wantProblem(t, http.StatusUnauthorized, "invalid_api_key")
}

// Another user's key, an unknown key id and a malformed one are all 404
// api_key_not_found, and the other user's key is left working.
func TestRevokeOthersAPIKey(t *testing.T) {
	a := newAPI(t)
	mine := a.newUser(email(t, "me"))
	theirs := a.call("POST", "/v1/api-keys", a.newUser(email(t, "them")), nil).want(t, http.StatusCreated)

	for _, id := range []string{theirs.str("id"), uuid.NewString(), "not-a-uuid", "123"} {
		a.call("DELETE", "/v1/api-keys/"+id, mine, nil).wantProblem(t, http.StatusNotFound, "api_key_not_found")
	}
	a.call("GET", "/v1/clinics", theirs.str("key"), nil).want(t, http.StatusOK)
}

// Key names are validated: at most 100 characters.
func TestAPIKeyName(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "user"))
	a.call("POST", "/v1/api-keys", key, map[string]any{"name": strings.Repeat("n", 101)}).wantFieldError(t, "/name", "too_long")
	a.call("POST", "/v1/api-keys", key, map[string]any{"name": strings.Repeat("n", 100)}).want(t, http.StatusCreated)
}
