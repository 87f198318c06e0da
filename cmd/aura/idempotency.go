package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aura-clinic/aura/schema/store"
)

// purgeBatch is how many expired idempotency keys one DELETE removes.
const purgeBatch = 1000

// cleanIdempotencyKeys deletes expired idempotency keys every interval until
// ctx is done.
func cleanIdempotencyKeys(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, interval time.Duration) {
	periodically(ctx, logger, interval, "idempotency cleanup", func(ctx context.Context) (int64, error) {
		return store.New(pool).PurgeExpiredIdempotencyKeys(ctx, purgeBatch)
	})
}

// idempotencyCommand runs `aura idempotency cleanup`: delete the expired
// keys now and print how many were deleted.
func idempotencyCommand(ctx context.Context, cfg config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "cleanup" {
		return errors.New("usage: aura idempotency cleanup")
	}
	pool, err := openDatabase(ctx, cfg, logger, cfg.AutoMigrate)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := store.New(pool).PurgeExpiredIdempotencyKeys(ctx, purgeBatch)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted %d expired idempotency keys\n", n)
	return nil
}
