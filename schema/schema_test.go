package schema_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/schema"
	"github.com/aura-clinic/aura/schema/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// uniqueName returns a database name no other test run uses.
func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "aura_test_schema_ensure_" + hex.EncodeToString(b)
}

// withDatabase returns the package database's URL with its database
// replaced by name.
func withDatabase(t *testing.T, name string) string {
	t.Helper()
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// dropDatabase drops name at the end of the test, through the package
// database's server.
func dropDatabase(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := dbtest.Pool(t).Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	var exists bool
	err := dbtest.Pool(t).QueryRow(testContext(t), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

// TestMigrationsApplied proves the migrations created every table and are
// embedded as versioned files.
func TestMigrationsApplied(t *testing.T) {
	t.Parallel()
	for _, table := range []string{"users", "api_keys", "clinics", "members", "patients", "goose_db_version"} {
		var reg *string
		if err := dbtest.Pool(t).QueryRow(testContext(t), "SELECT to_regclass($1)::text", "public."+table).Scan(&reg); err != nil {
			t.Fatal(err)
		}
		if reg == nil {
			t.Errorf("table %s does not exist", table)
		}
	}
	versions := migrationVersions(t)
	var applied []int64
	rows, err := dbtest.Pool(t).Query(testContext(t), "SELECT version_id FROM goose_db_version WHERE is_applied AND version_id > 0 ORDER BY id")
	if err == nil {
		applied, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(applied) != fmt.Sprint(versions) {
		t.Errorf("applied versions %v, want the embedded %v", applied, versions)
	}
}

// migrationVersions returns the versions of the embedded migrations, in
// order, from their NNNNN_description.sql names.
func migrationVersions(t *testing.T) []int64 {
	t.Helper()
	files, err := fs.Glob(schema.Migrations(), "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v, %v", files, err)
	}
	var versions []int64
	for _, f := range files {
		prefix, _, _ := strings.Cut(f, "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil {
			t.Fatalf("migration %s is not named NNNNN_description.sql", f)
		}
		versions = append(versions, v)
	}
	return versions
}

// TestMigrateIsIdempotent proves a second Migrate on a migrated database
// applies nothing and succeeds.
func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	versions, err := schema.Migrate(testContext(t), dbtest.Pool(t), quietLogger())
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(versions) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", versions)
	}
}

// TestMigrateFreshDatabase proves Migrate applies every embedded migration,
// in order, to an empty database, and that concurrent Migrate calls are safe:
// exactly one applies each version.
func TestMigrateFreshDatabase(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	name := uniqueName(t)
	dropDatabase(t, name)
	databaseURL := withDatabase(t, name)
	if created, err := schema.EnsureDatabase(ctx, databaseURL); err != nil || !created {
		t.Fatalf("EnsureDatabase = %v, %v", created, err)
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	want := migrationVersions(t)
	const callers = 3
	results := make(chan []int64, callers)
	errs := make(chan error, callers)
	for range callers {
		go func() {
			v, err := schema.Migrate(ctx, pool, quietLogger())
			results <- v
			errs <- err
		}()
	}
	var applied []int64
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
		applied = append(applied, <-results...)
	}
	if fmt.Sprint(applied) != fmt.Sprint(want) {
		t.Errorf("%d concurrent callers applied %v, want each of %v once, in order", callers, applied, want)
	}
}

// TestEnsureDatabase proves EnsureDatabase creates a missing database and
// reports true, then reports false for an existing one.
func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	name := uniqueName(t)
	dropDatabase(t, name)
	databaseURL := withDatabase(t, name)

	if databaseExists(t, name) {
		t.Fatalf("database %s exists before the test", name)
	}
	created, err := schema.EnsureDatabase(ctx, databaseURL)
	if err != nil || !created {
		t.Fatalf("EnsureDatabase(missing) = %v, %v; want true, nil", created, err)
	}
	if !databaseExists(t, name) {
		t.Fatalf("database %s was not created", name)
	}
	created, err = schema.EnsureDatabase(ctx, databaseURL)
	if err != nil || created {
		t.Errorf("EnsureDatabase(existing) = %v, %v; want false, nil", created, err)
	}
	if created, err := schema.EnsureDatabase(ctx, dbtest.URL(t)); err != nil || created {
		t.Errorf("EnsureDatabase(package database) = %v, %v; want false, nil", created, err)
	}
	// Pool settings in the URL are the pool's, not the server's.
	withPool := databaseURL + "&pool_max_conns=7&pool_min_conns=1"
	if created, err := schema.EnsureDatabase(ctx, withPool); err != nil || created {
		t.Errorf("EnsureDatabase(URL with pool settings) = %v, %v; want false, nil", created, err)
	}
}

// TestEnsureDatabaseErrors proves a URL without a database name or one that
// cannot be parsed is an error, not a silent success.
func TestEnsureDatabaseErrors(t *testing.T) {
	t.Setenv("PGDATABASE", "") // else pgx would fall back to it
	ctx := testContext(t)
	for _, u := range []string{"postgres://postgres@127.0.0.1:5432/?sslmode=disable", "::not a url::"} {
		if created, err := schema.EnsureDatabase(ctx, u); err == nil {
			t.Errorf("EnsureDatabase(%q) = %v, nil; want an error", u, created)
		}
	}
}

// fixture is a user and a clinic it is a member of, inserted with SQL.
type fixture struct {
	userID, clinicID uuid.UUID
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := testContext(t)
	f := fixture{userID: uuid.New(), clinicID: uuid.New()}
	exec(t, ctx, `INSERT INTO users (id, email, name) VALUES ($1, $2, 'Ana')`, f.userID, f.userID.String()+"@example.com")
	exec(t, ctx, `INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Clinic', 'EUR', 'Europe/Madrid')`, f.clinicID)
	exec(t, ctx, `INSERT INTO members (clinic_id, user_id, role) VALUES ($1, $2, 'owner')`, f.clinicID, f.userID)
	return f
}

func exec(t *testing.T, ctx context.Context, sql string, args ...any) {
	t.Helper()
	if _, err := dbtest.Pool(t).Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestDatabaseRejectsInvalidRows proves the constraints live in PostgreSQL:
// rows that break an invariant are refused with the expected SQLSTATE and
// constraint even when no Go validation runs.
func TestDatabaseRejectsInvalidRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	hash := strings.Repeat("h", 32)
	exec(t, testContext(t), `INSERT INTO api_keys (id, user_id, prefix, secret_hash) VALUES ($1, $2, 'aura_x', $3::bytea)`,
		uuid.New(), f.userID, hash)

	tests := []struct {
		name       string
		sql        string
		args       []any
		code       string // SQLSTATE
		constraint string // "" to accept any
	}{
		{"upper-case user email", `INSERT INTO users (id, email, name) VALUES ($1, 'Ana@Example.com', 'Ana')`,
			[]any{uuid.New()}, "23514", "users_email_lowercase"},
		{"user email with a space", `INSERT INTO users (id, email, name) VALUES ($1, 'an a@example.com', 'Ana')`,
			[]any{uuid.New()}, "23514", "users_email_shape"},
		{"user email with an ideographic space", `INSERT INTO users (id, email, name) VALUES ($1, $2, 'Ana')`,
			[]any{uuid.New(), "an\u3000a@example.com"}, "23514", "users_email_shape"},
		{"empty user name", `INSERT INTO users (id, email, name) VALUES ($1, 'x@example.com', '')`,
			[]any{uuid.New()}, "23514", "users_name_length"},
		{"duplicate user email", `INSERT INTO users (id, email, name) VALUES ($1, $2, 'Ana')`,
			[]any{uuid.New(), f.userID.String() + "@example.com"}, "23505", "users_email_unique"},
		{"unknown member role", `INSERT INTO members (clinic_id, user_id, role) VALUES ($1, $2, 'superuser')`,
			[]any{f.clinicID, uuid.New()}, "23514", "members_role_known"},
		{"duplicate membership", `INSERT INTO members (clinic_id, user_id, role) VALUES ($1, $2, 'admin')`,
			[]any{f.clinicID, f.userID}, "23505", "members_pkey"},
		{"member of a non-existent clinic", `INSERT INTO members (clinic_id, user_id, role) VALUES ($1, $2, 'admin')`,
			[]any{uuid.New(), f.userID}, "23503", "members_clinic_id_fkey"},
		{"patient with empty first name", `INSERT INTO patients (id, clinic_id, first_name, last_name) VALUES ($1, $2, '', 'L')`,
			[]any{uuid.New(), f.clinicID}, "23514", "patients_first_name_length"},
		{"patient without last name", `INSERT INTO patients (id, clinic_id, first_name) VALUES ($1, $2, 'Ana')`,
			[]any{uuid.New(), f.clinicID}, "23502", ""},
		{"patient of a non-existent clinic", `INSERT INTO patients (id, clinic_id, first_name, last_name) VALUES ($1, $2, 'Ana', 'L')`,
			[]any{uuid.New(), uuid.New()}, "23503", "patients_clinic_id_fkey"},
		{"patient notes with NUL", `INSERT INTO patients (id, clinic_id, first_name, last_name, notes) VALUES ($1, $2, 'Ana', 'L', $3)`,
			[]any{uuid.New(), f.clinicID, "a\x00b"}, "22021", ""}, // character_not_in_repertoire: no text column stores NUL
		{"patient born before 1900", `INSERT INTO patients (id, clinic_id, first_name, last_name, date_of_birth) VALUES ($1, $2, 'Ana', 'L', '1899-12-31')`,
			[]any{uuid.New(), f.clinicID}, "23514", "patients_date_of_birth_range"},
		{"patient phone with letters", `INSERT INTO patients (id, clinic_id, first_name, last_name, phone) VALUES ($1, $2, 'Ana', 'L', 'call me')`,
			[]any{uuid.New(), f.clinicID}, "23514", "patients_phone_shape"},
		{"patient updated before created", `INSERT INTO patients (id, clinic_id, first_name, last_name, created_at, updated_at) VALUES ($1, $2, 'Ana', 'L', now(), now() - interval '1 second')`,
			[]any{uuid.New(), f.clinicID}, "23514", "patients_updated_after_created"},
		{"api key with a 5-byte hash", `INSERT INTO api_keys (id, user_id, prefix, secret_hash) VALUES ($1, $2, 'aura_x', '\x0102030405'::bytea)`,
			[]any{uuid.New(), f.userID}, "23514", "api_keys_secret_hash_length"},
		{"duplicate api key hash", `INSERT INTO api_keys (id, user_id, prefix, secret_hash) VALUES ($1, $2, 'aura_y', $3::bytea)`,
			[]any{uuid.New(), f.userID, hash}, "23505", "api_keys_secret_hash_unique"},
		{"api key of a non-existent user", `INSERT INTO api_keys (id, user_id, prefix, secret_hash) VALUES ($1, $2, 'aura_z', $3::bytea)`,
			[]any{uuid.New(), uuid.New(), strings.Repeat("z", 32)}, "23503", "api_keys_user_id_fkey"},
		{"clinic currency eur", `INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Clinic', 'eur', 'Europe/Madrid')`,
			[]any{uuid.New()}, "23514", "clinics_currency_shape"},
		{"clinic without a time zone", `INSERT INTO clinics (id, name, currency, timezone) VALUES ($1, 'Clinic', 'EUR', '')`,
			[]any{uuid.New()}, "23514", "clinics_timezone_length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dbtest.Pool(t).Exec(testContext(t), tt.sql, tt.args...)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("insert succeeded or failed outside PostgreSQL: %v", err)
			}
			if pgErr.Code != tt.code || (tt.constraint != "" && pgErr.ConstraintName != tt.constraint) {
				t.Errorf("SQLSTATE %s, constraint %q (%s); want %s, %q",
					pgErr.Code, pgErr.ConstraintName, pgErr.Message, tt.code, tt.constraint)
			}
		})
	}
}

// TestDatabaseAcceptsValidRows proves the constraints are not stricter than
// the domain: a fully filled, valid patient is stored, and deleting a clinic
// removes its members and patients.
func TestDatabaseAcceptsValidRows(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f := newFixture(t)
	patientID := uuid.New()
	exec(t, ctx, `INSERT INTO patients (id, clinic_id, first_name, last_name, date_of_birth, email, phone, notes)
		VALUES ($1, $2, 'Ana', 'López', '1900-01-01', 'ana@example.com', '+34 (600) 000-000', '')`, patientID, f.clinicID)
	exec(t, ctx, `DELETE FROM clinics WHERE id = $1`, f.clinicID)
	var n int
	if err := dbtest.Pool(t).QueryRow(ctx, `SELECT (SELECT count(*) FROM patients WHERE clinic_id = $1) + (SELECT count(*) FROM members WHERE clinic_id = $1)`,
		f.clinicID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows of a deleted clinic remain", n)
	}
}
