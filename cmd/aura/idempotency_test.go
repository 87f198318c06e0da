package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// keyOwner is a user and a clinic whose idempotency keys a test inserts.
type keyOwner struct {
	userID, clinicID uuid.UUID
}

// newKeyOwner inserts a user and a clinic with SQL, after purging the keys
// other tests left expired, so that a purge's count is this test's alone.
func newKeyOwner(t *testing.T) keyOwner {
	t.Helper()
	ctx := context.Background()
	if _, err := store.New(dbtest.Pool(t)).PurgeExpiredIdempotencyKeys(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	o := keyOwner{userID: uuid.New(), clinicID: uuid.New()}
	sqlExec(t, `INSERT INTO users (id, email, name) VALUES ($1, $2, 'Ana')`, o.userID, o.userID.String()+"@example.com")
	sqlExec(t, `INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Clinic', 'EUR', 'Europe/Madrid')`, o.clinicID)
	return o
}

func sqlExec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := dbtest.Pool(t).Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// insertKey inserts one of the owner's keys, in its clinic or (odd i) in
// none, expiring expiresIn from now (negative: already expired).
func (o keyOwner) insertKey(t *testing.T, key string, i int, expiresIn time.Duration) {
	t.Helper()
	var clinic any = o.clinicID
	if i%2 == 1 {
		clinic = nil
	}
	fp := sha256.Sum256([]byte(key))
	sqlExec(t, `INSERT INTO idempotency_keys (user_id, clinic_id, key, fingerprint, outcome, created_at, expires_at)
		VALUES ($1, $2, $3, $4, '{"value": {}}', now() + $5::interval - interval '1 hour', now() + $5::interval)`,
		o.userID, clinic, key, fp[:], expiresIn)
}

// insertKeys inserts expired and unexpired keys of the owner.
func (o keyOwner) insertKeys(t *testing.T, expired, unexpired int) {
	t.Helper()
	for i := range expired {
		o.insertKey(t, fmt.Sprint("expired-", i), i, -time.Duration(i+1)*time.Second)
	}
	for i := range unexpired {
		o.insertKey(t, fmt.Sprint("unexpired-", i), i, time.Hour)
	}
}

// keys returns the owner's remaining keys, sorted.
func (o keyOwner) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	rows, err := dbtest.Pool(t).Query(context.Background(), `SELECT key FROM idempotency_keys WHERE user_id = $1 ORDER BY key`, o.userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestIdempotencyCleanupCommand proves `aura idempotency cleanup` deletes the
// expired keys, with or without a clinic, keeps the unexpired ones and says
// how many it deleted; run again, it deletes none.
func TestIdempotencyCleanupCommand(t *testing.T) {
	useTestDatabase(t)
	o := newKeyOwner(t)
	o.insertKeys(t, 3, 2)

	for _, want := range []int{3, 0} {
		stdout, stderr, err := cli(t, "idempotency", "cleanup")
		if err != nil {
			t.Fatalf("idempotency cleanup: %v\n%s", err, stderr)
		}
		if line := fmt.Sprintf("deleted %d expired idempotency keys\n", want); stdout != line {
			t.Errorf("stdout %q, want %q", stdout, line)
		}
		if got := strings.Join(o.keys(t), " "); got != "unexpired-0 unexpired-1" {
			t.Errorf("keys left: %s; want the unexpired ones", got)
		}
	}
}

// TestIdempotencyCommandUsage proves `aura idempotency` without the cleanup
// subcommand, or with anything else, fails with the usage and does nothing.
func TestIdempotencyCommandUsage(t *testing.T) {
	useTestDatabase(t)
	o := newKeyOwner(t)
	o.insertKeys(t, 1, 0)
	for _, args := range [][]string{{"idempotency"}, {"idempotency", "purge"}, {"idempotency", "cleanup", "now"}} {
		stdout, _, err := cli(t, args...)
		if err == nil || !strings.Contains(err.Error(), "usage: aura idempotency cleanup") {
			t.Errorf("aura %s: err %v, want the usage", strings.Join(args, " "), err)
		}
		if stdout != "" {
			t.Errorf("aura %s printed %q", strings.Join(args, " "), stdout)
		}
	}
	if got := o.keys(t); len(got) != 1 {
		t.Errorf("keys left: %v; a failed command deleted keys", got)
	}
}

// TestCleanIdempotencyKeys proves serve's periodic job deletes keys as they
// expire, leaves the others, and returns once its context is cancelled.
func TestCleanIdempotencyKeys(t *testing.T) {
	o := newKeyOwner(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, done := dbtest.Pool(t), make(chan struct{})
	go func() {
		defer close(done)
		cleanIdempotencyKeys(ctx, pool, slog.New(slog.DiscardHandler), 20*time.Millisecond)
	}()

	o.insertKeys(t, 2, 1)
	deadline := time.Now().Add(10 * time.Second)
	for got := o.keys(t); len(got) != 1 || got[0] != "unexpired-0"; got = o.keys(t) {
		if time.Now().After(deadline) {
			t.Fatalf("keys left after 10s: %v; want only the unexpired one", got)
		}
		time.Sleep(10 * time.Millisecond)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("cleanIdempotencyKeys did not return after its context was cancelled")
	}
}
