// Command aura is Aura's one binary: the HTTP API and its operational
// commands.
//
//	aura serve                                 run the HTTP API
//	aura migrate                               apply pending migrations and exit
//	aura user create --email E --name N        create (or find) a user and print a new API key
//	aura idempotency cleanup                   delete expired idempotency keys now
//	aura outbox forward|status|cleanup|retry   the event outbox (see the README)
//	aura bench SCENARIO [flags]                load a running server and report (package bench)
//
// Configuration comes from the environment; see config.go and the README.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // IANA zones for clinic time zones, even on hosts without them
)

const usage = `usage:
  aura serve [--no-migrate]                 run the HTTP API
  aura migrate                              apply pending migrations and exit
  aura user create --email E --name N       create (or find) a user; prints a new API key as the last line
  aura idempotency cleanup                  delete expired idempotency keys now
  aura outbox forward                       move events from the outbox to the pub/sub (also inside serve)
  aura outbox status                        pending, processed and failed events, oldest pending age
  aura outbox cleanup                       delete forwarded events and inbox rows older than AURA_OUTBOX_TTL
  aura outbox retry [--consumer C]          re-deliver events a consumer gave up on
  aura bench write|mixed|booking|payments|clinics [--duration 30s --concurrency 32 --clinics 16 --rate R --json ...]
                                            load a running server (AURA_RATE_LIMITS=off) and report; --help lists the flags

configuration: environment variables, listed in the README (AURA_DATABASE_URL, AURA_HTTP_ADDR, ...)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "aura:", err)
		os.Exit(1)
	}
}

// run dispatches a subcommand; stdout carries only the command's output.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	switch args[0] {
	case "serve":
		return serve(ctx, cfg, logger, args[1:], stderr)
	case "migrate":
		return migrate(ctx, cfg, logger)
	case "user":
		return userCommand(ctx, cfg, logger, args[1:], stdout, stderr)
	case "outbox":
		return outboxCommand(ctx, cfg, logger, args[1:], stdout, stderr)
	case "bench":
		return benchCommand(ctx, cfg, logger, args[1:], stdout, stderr)
	case "idempotency":
		return idempotencyCommand(ctx, cfg, logger, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
