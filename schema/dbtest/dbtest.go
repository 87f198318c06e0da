// Package dbtest gives each test package its own fresh, migrated PostgreSQL
// database, created before the package's tests run and dropped after them.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// and get the pool in a test with dbtest.Pool(t). The server comes from
// AURA_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
// When PostgreSQL is unreachable the package fails with a message saying how
// to start it; it never skips.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/schema"
)

// DefaultURL is the server the tests use when AURA_TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

const howToStart = `start PostgreSQL first:
  on this machine:   pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
  with Docker:       docker compose up -d postgres
or point AURA_TEST_DATABASE_URL at a server where the role may create databases`

// The package's database. Test binaries are one per package, so this state
// is exactly "the database of this test package".
var (
	pool    *pgxpool.Pool
	poolURL string
)

// Main creates the package's database, runs the tests, drops the database and
// exits with the tests' status.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adminURL := os.Getenv("AURA_TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = DefaultURL
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: PostgreSQL unreachable at %s: %v\n%s\n", redact(adminURL), err, howToStart)
		return 1
	}
	name := databaseName()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: create database %s: %v\n%s\n", name, err, howToStart)
		admin.Close(ctx)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: drop database %s: %v\n", name, err)
		}
		admin.Close(ctx)
	}()

	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: parse %s: %v\n", redact(adminURL), err)
		return 1
	}
	cfg.ConnConfig.Database = name
	cfg.MaxConns = 20
	pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: open pool: %v\n", err)
		return 1
	}
	poolURL = withDatabase(adminURL, name)
	if _, err := schema.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: migrate %s: %v\n", name, err)
		pool.Close()
		return 1
	}
	code := m.Run()
	pool.Close()
	return code
}

// Pool returns the package's migrated database. It fails the test when the
// package has no TestMain calling Main.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	if pool == nil {
		t.Fatal("dbtest: no database: call dbtest.Main(m) from the package's TestMain")
	}
	return pool
}

// URL returns a connection URL for the package's database.
func URL(t testing.TB) string {
	t.Helper()
	Pool(t)
	return poolURL
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// databaseName names the database after the test binary's package plus a
// random suffix, so parallel packages and leftovers never collide.
func databaseName() string {
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	pkg = unsafeChars.ReplaceAllString(strings.ToLower(pkg), "_")
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return fmt.Sprintf("aura_test_%s_%s", pkg, hex.EncodeToString(suffix))
}

func withDatabase(rawURL, name string) string {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return rawURL
	}
	u := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	if cfg.Password != "" {
		u = fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
	}
	return u
}

var passwordInURL = regexp.MustCompile(`://([^:/@]+):[^@]*@`)

func redact(u string) string { return passwordInURL.ReplaceAllString(u, "://$1:***@") }
