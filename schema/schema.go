// Package schema owns Aura's PostgreSQL schema: the versioned migrations
// embedded in the binary and the helpers that bring a database up to date.
//
// The database is the final arbiter of correctness: keys, foreign keys,
// NOT NULL and CHECK constraints live in the migrations, so a second process or
// a bug in Go cannot store data that breaks an invariant.
package schema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var embedded embed.FS

// Migrations returns the SQL migration files, named NNNNN_description.sql.
func Migrations() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(fmt.Sprintf("schema: embedded migrations: %v", err)) // unreachable: the path is a literal
	}
	return sub
}

// Migrate applies every pending migration to the database behind pool and
// returns the versions it applied. A PostgreSQL advisory lock makes concurrent
// calls from several processes safe: one migrates, the others wait.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) ([]int64, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, Migrations(),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("migration provider: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply migrations: %w", err)
	}
	versions := make([]int64, 0, len(results))
	for _, r := range results {
		versions = append(versions, r.Source.Version)
		logger.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration.String())
	}
	return versions, nil
}

// EnsureDatabase creates the database named in databaseURL when it does not
// exist, connecting to the server's "postgres" maintenance database with the
// same credentials. It reports whether it created the database. A role that
// may not create databases gets an error saying so.
func EnsureDatabase(ctx context.Context, databaseURL string) (bool, error) {
	// The pool's parser, so that pool settings (pool_max_conns…) are taken
	// out of the URL rather than sent to the server as its own parameters.
	poolCfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return false, fmt.Errorf("parse database URL: %w", err)
	}
	cfg := poolCfg.ConnConfig
	name := cfg.Database
	if name == "" {
		return false, errors.New("database URL names no database")
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect to the maintenance database: %w", err)
	}
	defer conn.Close(ctx)

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &pgErr) && pgErr.Code == "42P04": // duplicate_database: another process won the race
		return false, nil
	case errors.As(err, &pgErr) && pgErr.Code == "42501": // insufficient_privilege
		return false, fmt.Errorf("database %q does not exist and role %q may not create it: create it first", name, cfg.User)
	default:
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
}
