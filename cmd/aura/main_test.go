package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// cli runs the aura command line in-process, as main does, with a deadline.
func cli(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// useTestDatabase points the command line at the package's test database.
func useTestDatabase(t *testing.T) {
	t.Helper()
	t.Setenv("AURA_DATABASE_URL", dbtest.URL(t))
}

// randomHex returns n random bytes in hex.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freshDatabase returns the name and URL of a database that does not exist
// yet on the test server, and drops it when the test ends.
func freshDatabase(t *testing.T) (name, databaseURL string) {
	t.Helper()
	name = "aura_test_cli_" + randomHex(t, 6)
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := dbtest.Pool(t).Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	if databaseExists(t, name) {
		t.Fatalf("database %s already exists", name)
	}
	return name, u.String()
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	var exists bool
	err := dbtest.Pool(t).QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

// assertMigrated checks that the database at databaseURL has Aura's tables.
func assertMigrated(t *testing.T, databaseURL string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var patients *string
	if err := conn.QueryRow(ctx, "SELECT to_regclass('public.patients')::text").Scan(&patients); err != nil {
		t.Fatal(err)
	}
	if patients == nil {
		t.Errorf("database %s is not migrated: no patients table", databaseURL)
	}
}

// lastLine returns stdout's last line, failing unless stdout ends in a newline.
func lastLine(t *testing.T, stdout string) string {
	t.Helper()
	if !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("stdout %q does not end with a newline", stdout)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	return lines[len(lines)-1]
}

// assertKeyLine checks that line is an API key and nothing else.
func assertKeyLine(t *testing.T, line string) {
	t.Helper()
	if !strings.HasPrefix(line, platform.KeyPrefix) || strings.ContainsAny(line, " \t\r<>()") || len(line) < 40 {
		t.Fatalf("last line %q is not a bare API key", line)
	}
}

// waitNoGoroutine fails the test if a goroutine running fn is still alive
// after a short grace period: what run starts, it must stop before returning.
func waitNoGoroutine(t *testing.T, fn string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		buf := make([]byte, 1<<16)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		if !bytes.Contains(buf, []byte(fn)) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a goroutine in %s still runs after run returned", fn)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUserCreate proves `aura user create` creates a user and prints a key
// alone on the last line; run again for the same email it finds the user and
// prints a different key; both keys sign the user in; and the database holds
// only their hashes.
func TestUserCreate(t *testing.T) {
	useTestDatabase(t)
	email := "Ana." + randomHex(t, 4) + "@Example.COM"

	out1, _, err := cli(t, "user", "create", "--email", email, "--name", "Ana López")
	if err != nil {
		t.Fatalf("first user create: %v", err)
	}
	key1 := lastLine(t, out1)
	assertKeyLine(t, key1)
	if !strings.Contains(out1, "created user") {
		t.Errorf("first run output %q does not say the user was created", out1)
	}

	out2, _, err := cli(t, "user", "create", "--email", strings.ToLower(email), "--name", "Someone Else")
	if err != nil {
		t.Fatalf("second user create: %v", err)
	}
	key2 := lastLine(t, out2)
	assertKeyLine(t, key2)
	if !strings.Contains(out2, "found existing") {
		t.Errorf("second run output %q does not say the user already existed", out2)
	}
	if key1 == key2 {
		t.Fatalf("both runs printed the same key %q", key1)
	}

	ctx := context.Background()
	q := store.New(dbtest.Pool(t))
	var ids []string
	for _, key := range []string{key1, key2} {
		caller, ok, err := q.Authenticate(ctx, platform.HashSecret(key), uuid.Nil)
		u := caller.User
		if err != nil || !ok {
			t.Fatalf("key %.12s… does not authenticate: ok=%v err=%v", key, ok, err)
		}
		if u.Email != strings.ToLower(email) || u.Name != "Ana López" {
			t.Errorf("key signs in as %q <%s>, want %q <%s>", u.Name, u.Email, "Ana López", strings.ToLower(email))
		}
		ids = append(ids, u.ID.String())

		var n int
		err = dbtest.Pool(t).QueryRow(ctx, `SELECT count(*) FROM api_keys k
			WHERE encode(k.secret_hash, 'escape') LIKE '%' || $1 || '%' OR k.prefix = $1
			   OR strpos(k::text, $1) > 0 OR strpos(encode(k.secret_hash, 'hex'), encode(convert_to($1, 'UTF8'), 'hex')) > 0`,
			key).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("the plain key is stored in %d api_keys rows", n)
		}
	}
	if ids[0] != ids[1] {
		t.Errorf("the two keys belong to different users %v", ids)
	}
}

// TestUserCreateErrors proves bad invocations of `aura user create` fail
// with a message and print no key.
func TestUserCreateErrors(t *testing.T) {
	useTestDatabase(t)
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"missing --email", []string{"user", "create", "--name", "Ana"}, "--email"},
		{"display-name email", []string{"user", "create", "--email", "Ana <ana@example.com>", "--name", "Ana"}, "--email"},
		{"over-long name", []string{"user", "create", "--email", "long." + randomHex(t, 4) + "@example.com", "--name", strings.Repeat("n", 201)}, "--name"},
		{"unquoted name", []string{"user", "create", "--email", "ana@example.com", "--name", "Ana", "López"}, "López"},
		{"unknown flag", []string{"user", "create", "--email", "ana@example.com", "--mail", "x"}, "mail"},
		{"no subcommand", []string{"user"}, "usage"},
		{"unknown subcommand", []string{"user", "delete"}, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := cli(t, tt.args...)
			if err == nil {
				t.Fatalf("aura %s succeeded", strings.Join(tt.args, " "))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(stdout, platform.KeyPrefix) {
				t.Errorf("a failed run printed a key: %q", stdout)
			}
		})
	}
}

// TestRunCommands proves the dispatcher: no command and an unknown command
// are errors that print the usage, help prints it to stdout, and a malformed
// environment fails before any command runs.
func TestRunCommands(t *testing.T) {
	_, stderr, err := cli(t)
	if err == nil || !strings.Contains(stderr, "usage:") {
		t.Errorf("no command: err=%v stderr=%q; want an error and the usage", err, stderr)
	}
	_, stderr, err = cli(t, "frobnicate")
	if err == nil || !strings.Contains(err.Error(), "frobnicate") || !strings.Contains(stderr, "usage:") {
		t.Errorf("unknown command: err=%v stderr=%q; want an error naming it and the usage", err, stderr)
	}
	stdout, _, err := cli(t, "help")
	if err != nil || !strings.Contains(stdout, "aura user create") {
		t.Errorf("help: err=%v stdout=%q", err, stdout)
	}
	t.Setenv("AURA_LOG_LEVEL", "loud")
	if _, _, err := cli(t, "migrate"); err == nil || !strings.Contains(err.Error(), "AURA_LOG_LEVEL") {
		t.Errorf("migrate with AURA_LOG_LEVEL=loud: err=%v, want one naming the variable", err)
	}
}

// TestMigrateCommand proves `aura migrate` succeeds on an up-to-date
// database.
func TestMigrateCommand(t *testing.T) {
	useTestDatabase(t)
	if _, stderr, err := cli(t, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, stderr)
	}
	assertMigrated(t, dbtest.URL(t))
}

// TestMigrateCreatesDatabase proves `aura migrate` creates the database
// named in AURA_DATABASE_URL when it is missing, and migrates it.
func TestMigrateCreatesDatabase(t *testing.T) {
	name, databaseURL := freshDatabase(t)
	t.Setenv("AURA_DATABASE_URL", databaseURL)
	if _, stderr, err := cli(t, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, stderr)
	}
	if !databaseExists(t, name) {
		t.Fatalf("migrate did not create database %s", name)
	}
	assertMigrated(t, databaseURL)
}

// TestFlagErrorsGoToStderr proves a bad flag is reported, with the flags'
// usage, on run's stderr writer (not the process's) and never on stdout.
func TestFlagErrorsGoToStderr(t *testing.T) {
	for _, args := range [][]string{{"user", "create", "--mail", "x"}, {"serve", "--bogus"}} {
		stdout, stderr, err := cli(t, args...)
		if err == nil {
			t.Errorf("aura %s succeeded", strings.Join(args, " "))
		}
		if !strings.Contains(stderr, "flag provided but not defined") || stdout != "" {
			t.Errorf("aura %s: stdout=%q stderr=%q; want the flag error on stderr only", strings.Join(args, " "), stdout, stderr)
		}
	}
}
