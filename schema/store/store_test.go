package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// No test here is parallel: PurgeExpiredIdempotencyKeys deletes every
// expired row of the database, whichever test inserted it.
func TestMain(m *testing.M) { dbtest.Main(m) }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// exec runs a statement on the package's database, failing the test on error.
func exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := dbtest.Pool(t).Exec(testContext(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// owner is a user and a clinic, inserted with SQL and deleted (with their
// idempotency keys) when the test ends.
type owner struct {
	userID, clinicID uuid.UUID
}

func newOwner(t *testing.T) owner {
	t.Helper()
	o := owner{userID: uuid.New(), clinicID: uuid.New()}
	exec(t, `INSERT INTO users (id, email, name) VALUES ($1, $2, 'Ana')`, o.userID, o.userID.String()+"@example.com")
	exec(t, `INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Clinic', 'EUR', 'Europe/Madrid')`, o.clinicID)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := dbtest.Pool(t).Exec(ctx, `DELETE FROM users WHERE id = $1`, o.userID); err != nil {
			t.Errorf("delete user: %v", err)
		}
		if _, err := dbtest.Pool(t).Exec(ctx, `DELETE FROM clinics WHERE id = $1`, o.clinicID); err != nil {
			t.Errorf("delete clinic: %v", err)
		}
	})
	return o
}

// fingerprint is a valid (32-byte) fingerprint of s.
func fingerprint(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// nullable is a clinic id as SQL sees it: uuid.Nil is NULL.
func nullable(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// insertKey inserts a key of the user in clinicID (uuid.Nil for none) with
// SQL, expiring expiresIn from now (negative: already expired).
func (o owner) insertKey(t *testing.T, clinicID uuid.UUID, key string, expiresIn time.Duration) {
	t.Helper()
	exec(t, `INSERT INTO idempotency_keys (user_id, clinic_id, key, fingerprint, outcome, created_at, expires_at)
		VALUES ($1, $2, $3, $4, '{"value": "old"}', now() + $5::interval - interval '1 hour', now() + $5::interval)`,
		o.userID, nullable(clinicID), key, fingerprint("old"), expiresIn)
}

// keys counts the user's idempotency keys, all or only the unexpired ones.
func (o owner) keys(t *testing.T, unexpiredOnly bool) int {
	t.Helper()
	var n int
	err := dbtest.Pool(t).QueryRow(testContext(t), `SELECT count(*) FROM idempotency_keys
		WHERE user_id = $1 AND (NOT $2 OR expires_at > now())`, o.userID, unexpiredOnly).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// purge runs PurgeExpiredIdempotencyKeys on the pool with batch.
func purge(t *testing.T, batch int) int64 {
	t.Helper()
	n, err := store.New(dbtest.Pool(t)).PurgeExpiredIdempotencyKeys(testContext(t), batch)
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	return n
}

// PurgeExpiredIdempotencyKeys deletes every expired key, in as many batches
// as it takes (5 or 4 rows, batches of 2), and no unexpired one; with nothing
// expired it deletes nothing and returns 0.
func TestPurgeExpiredIdempotencyKeys(t *testing.T) {
	for _, expired := range []int{5, 4} {
		purge(t, 1000) // whatever other tests left expired
		o := newOwner(t)
		for i := range expired {
			clinic := o.clinicID
			if i%2 == 0 {
				clinic = uuid.Nil
			}
			o.insertKey(t, clinic, fmt.Sprint("expired-", i), -time.Duration(i+1)*time.Minute)
		}
		o.insertKey(t, o.clinicID, "fresh-1", time.Hour)
		o.insertKey(t, uuid.Nil, "fresh-2", time.Minute)

		if n := purge(t, 2); n != int64(expired) {
			t.Errorf("purge deleted %d keys, want %d", n, expired)
		}
		if all, fresh := o.keys(t, false), o.keys(t, true); all != 2 || fresh != 2 {
			t.Errorf("after the purge %d keys remain, %d unexpired; want the 2 unexpired ones", all, fresh)
		}
		if n := purge(t, 2); n != 0 {
			t.Errorf("a purge with nothing expired deleted %d keys, want 0", n)
		}
	}
}

// save stores a record of the owner's key in clinicID with fingerprint fp.
func (o owner) save(t *testing.T, clinicID uuid.UUID, key, fp string, ttl time.Duration) (store.IdempotencyRecord, error) {
	t.Helper()
	saved, err := store.New(dbtest.Pool(t)).SaveIdempotencyRecords(testContext(t), []store.IdempotencyRecord{{
		UserID: o.userID, ClinicID: clinicID, Key: key, Fingerprint: fingerprint(fp), Outcome: []byte(`{"value": "` + fp + `"}`),
	}}, ttl)
	if err != nil {
		return store.IdempotencyRecord{}, err
	}
	return saved[0], nil
}

// record reads the owner's unexpired record of key in clinicID.
func (o owner) record(t *testing.T, clinicID uuid.UUID, key string) (store.IdempotencyRecord, bool) {
	t.Helper()
	recs, err := store.New(dbtest.Pool(t)).IdempotencyRecords(testContext(t), clinicID, []store.IdempotencyKey{{UserID: o.userID, Key: key}})
	if err != nil {
		t.Fatalf("read record: %v", err)
	}
	if len(recs) == 0 {
		return store.IdempotencyRecord{}, false
	}
	return recs[0], true
}

// SaveIdempotencyRecords takes the place of an expired record of the key,
// with the new fingerprint, outcome and expiry, but refuses to overwrite an
// unexpired one and leaves it as it was.
func TestSaveIdempotencyRecordReplacesOnlyExpired(t *testing.T) {
	o := newOwner(t)
	for _, clinic := range []uuid.UUID{o.clinicID, uuid.Nil} {
		o.insertKey(t, clinic, "key", -time.Minute)

		before := time.Now()
		saved, err := o.save(t, clinic, "key", "new", time.Hour)
		if err != nil {
			t.Fatalf("save over an expired record: %v", err)
		}
		if d := saved.ExpiresAt.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
			t.Errorf("saved record expires in %v, want 1h", d)
		}
		if _, err := o.save(t, clinic, "key", "newer", time.Hour); err == nil {
			t.Error("save over an unexpired record succeeded")
		}
		rec, found := o.record(t, clinic, "key")
		if !found || !bytes.Equal(rec.Fingerprint, fingerprint("new")) || string(rec.Outcome) != `{"value": "new"}` {
			t.Errorf("stored record %+v (found %v), want the one saved over the expired one", rec, found)
		}
	}
	if n := o.keys(t, false); n != 2 {
		t.Errorf("%d rows, want one per scope", n)
	}
}

// IdempotencyRecords finds an unexpired record, with its fingerprint, outcome
// and expiry, and ignores an expired one as if it were gone.
func TestIdempotencyRecordIgnoresExpired(t *testing.T) {
	o := newOwner(t)
	o.insertKey(t, o.clinicID, "expired", -time.Second)
	if rec, found := o.record(t, o.clinicID, "expired"); found {
		t.Errorf("found expired record %+v", rec)
	}

	saved, err := o.save(t, o.clinicID, "fresh", "body", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rec, found := o.record(t, o.clinicID, "fresh")
	if !found || !bytes.Equal(rec.Fingerprint, saved.Fingerprint) || string(rec.Outcome) != `{"value": "body"}` ||
		!rec.ExpiresAt.Equal(saved.ExpiresAt) || rec.UserID != o.userID || rec.ClinicID != o.clinicID {
		t.Errorf("read %+v (found %v), want %+v", rec, found, saved)
	}
	if _, found := o.record(t, o.clinicID, "never used"); found {
		t.Error("found a record of a key never used")
	}
}

// A key outside any clinic (NULL clinic) and the same key in a clinic are
// distinct records; two rows of one (user, NULL clinic, key) break the
// unique constraint, since it treats NULLs as equal.
func TestIdempotencyKeyNullClinicScope(t *testing.T) {
	o := newOwner(t)
	if _, err := o.save(t, uuid.Nil, "key", "outside", time.Hour); err != nil {
		t.Fatalf("save without clinic: %v", err)
	}
	if _, err := o.save(t, o.clinicID, "key", "inside", time.Hour); err != nil {
		t.Fatalf("save in the clinic: %v", err)
	}
	for clinic, fp := range map[uuid.UUID]string{uuid.Nil: "outside", o.clinicID: "inside"} {
		if rec, found := o.record(t, clinic, "key"); !found || !bytes.Equal(rec.Fingerprint, fingerprint(fp)) {
			t.Errorf("clinic %v: read %+v (found %v), want the %q record", clinic, rec, found, fp)
		}
	}

	for _, clinic := range []uuid.UUID{uuid.Nil, o.clinicID} {
		_, err := dbtest.Pool(t).Exec(testContext(t), `INSERT INTO idempotency_keys (user_id, clinic_id, key, fingerprint, outcome, expires_at)
			VALUES ($1, $2, 'key', $3, '{"value": 1}', now() + interval '1 hour')`, o.userID, nullable(clinic), fingerprint("dup"))
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" || pgErr.ConstraintName != "idempotency_keys_scope_unique" {
			t.Errorf("clinic %v: second row for the key: %v; want SQLSTATE 23505 on idempotency_keys_scope_unique", clinic, err)
		}
	}
}

// TryLockIdempotencyKeys holds the key for the rest of its transaction: a
// second transaction cannot take it until the first ends.
func TestTryLockIdempotencyKey(t *testing.T) {
	ctx := testContext(t)
	const lockID = 4242
	begin := func() pgx.Tx {
		tx, err := dbtest.Pool(t).Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
		return tx
	}
	tryLock := func(tx pgx.Tx) bool {
		ok, err := store.New(tx).TryLockIdempotencyKeys(ctx, []int64{lockID})
		if err != nil {
			t.Fatal(err)
		}
		return ok[0]
	}

	first, second := begin(), begin()
	if !tryLock(first) {
		t.Fatal("first transaction did not get a free lock")
	}
	if tryLock(second) {
		t.Error("second transaction got the lock the first holds")
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !tryLock(second) {
		t.Error("second transaction did not get the lock after the first ended")
	}
}

// The batch forms work on many keys in one statement: each record is saved
// and read back with its own fingerprint and outcome, an expired one is
// replaced, a key never used is absent, and two records of one key cannot be
// saved over each other.
func TestIdempotencyRecordsOfManyKeys(t *testing.T) {
	o := newOwner(t)
	o.insertKey(t, o.clinicID, "b", -time.Minute)
	var recs []store.IdempotencyRecord
	for _, key := range []string{"a", "b", "c"} {
		recs = append(recs, store.IdempotencyRecord{UserID: o.userID, ClinicID: o.clinicID, Key: key,
			Fingerprint: fingerprint(key), Outcome: []byte(`{"value": "` + key + `"}`)})
	}
	q := store.New(dbtest.Pool(t))
	saved, err := q.SaveIdempotencyRecords(testContext(t), recs, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) != 3 || saved[2].Key != "c" || saved[2].ExpiresAt.IsZero() {
		t.Fatalf("saved %+v, want the three records in order with their expiry", saved)
	}
	found, err := q.IdempotencyRecords(testContext(t), o.clinicID, []store.IdempotencyKey{
		{UserID: o.userID, Key: "c"}, {UserID: o.userID, Key: "never"}, {UserID: o.userID, Key: "a"}, {UserID: o.userID, Key: "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 3 {
		t.Fatalf("found %d records, want 3", len(found))
	}
	for _, rec := range found {
		if !bytes.Equal(rec.Fingerprint, fingerprint(rec.Key)) || string(rec.Outcome) != `{"value": "`+rec.Key+`"}` {
			t.Errorf("key %q: read fingerprint %x outcome %s, want its own", rec.Key, rec.Fingerprint, rec.Outcome)
		}
	}
	if _, err := q.SaveIdempotencyRecords(testContext(t), recs[:1], time.Hour); err == nil {
		t.Error("saving over an unexpired record of the batch succeeded")
	}
}

// Authenticate signs in an unrevoked key's user and, in the same query,
// reads their membership of the clinic asked about: the clinic and role of
// a member, nothing for a non-member or when no clinic is asked about.
func TestAuthenticateWithMembership(t *testing.T) {
	o := newOwner(t)
	other := newOwner(t)
	exec(t, `INSERT INTO members (clinic_id, user_id, role) VALUES ($1, $2, 'billing')`, o.clinicID, o.userID)
	secret := fingerprint("secret " + o.userID.String())
	exec(t, `INSERT INTO api_keys (id, user_id, prefix, secret_hash) VALUES ($1, $2, 'aura_x', $3)`, uuid.New(), o.userID, secret)
	q := store.New(dbtest.Pool(t))

	c, ok, err := q.Authenticate(testContext(t), secret, o.clinicID)
	if err != nil || !ok || c.User.ID != o.userID {
		t.Fatalf("Authenticate = %+v, %v, %v; want the owner", c, ok, err)
	}
	if c.Member == nil || c.Member.ID != o.clinicID || c.Member.Role != platform.RoleBilling || c.Member.Currency != "EUR" {
		t.Errorf("membership %+v, want the clinic with role billing", c.Member)
	}
	for _, clinic := range []uuid.UUID{other.clinicID, uuid.Nil} {
		if c, ok, err := q.Authenticate(testContext(t), secret, clinic); err != nil || !ok || c.Member != nil {
			t.Errorf("clinic %v: %+v, %v, %v; want the user without membership", clinic, c, ok, err)
		}
	}
	exec(t, `UPDATE api_keys SET revoked_at = now() WHERE secret_hash = $1`, secret)
	if _, ok, err := q.Authenticate(testContext(t), secret, o.clinicID); err != nil || ok {
		t.Errorf("revoked key: ok %v, err %v; want not ok", ok, err)
	}
}
