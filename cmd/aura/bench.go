package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/cmd/aura/bench"
)

// The bench user, created (or found) in the configured database when no
// --api-key is given.
const (
	benchEmail = "bench@example.com"
	benchName  = "Aura bench"
)

// benchCommand runs `aura bench SCENARIO [flags]` against a running server:
// see package bench. The report goes to stdout, progress to stderr.
func benchCommand(ctx context.Context, cfg config, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	bc := bench.DefaultConfig()
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: aura bench %s [flags]\n", strings.Join(bench.ScenarioNames(), "|"))
		flags.PrintDefaults()
	}
	flags.StringVar(&bc.URL, "url", bc.URL, "the API's base URL")
	flags.StringVar(&bc.APIKey, "api-key", "", "an API key to use; without one, the bench user "+benchEmail+" gets a new key from AURA_DATABASE_URL, revoked at the end")
	flags.DurationVar(&bc.Duration, "duration", bc.Duration, "the measured window")
	flags.DurationVar(&bc.Warmup, "warmup", bc.Warmup, "load before the measured window, not counted")
	flags.IntVar(&bc.Concurrency, "concurrency", bc.Concurrency, "workers sending requests")
	flags.IntVar(&bc.Clinics, "clinics", bc.Clinics, "clinics to create and spread the load over")
	flags.Float64Var(&bc.Rate, "rate", 0, "open-loop target rate in requests/s; 0 sends as fast as the workers can")
	flags.IntVar(&bc.Streams, "streams", bc.Streams, "at most this many clinics' event streams are followed")
	flags.DurationVar(&bc.Drain, "drain", bc.Drain, "at most this long to wait for outstanding events after the load")
	asJSON := flags.Bool("json", false, "print the report as one JSON object")
	if err := parseWithCommand(flags, args, &bc.Scenario); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if bc.APIKey == "" {
		if err := bc.ValidateFlags(); err != nil {
			return err // before making a key for nothing
		}
		res, err := createUser(ctx, cfg, logger, commands.CreateUser{Email: benchEmail, Name: benchName, KeyName: "bench"})
		if err != nil {
			return fmt.Errorf("create the bench user: %w", err)
		}
		bc.APIKey = res.Key.Key
		defer revokeBenchKey(ctx, bc.URL, res.Key.Key, res.Key.ID.String(), stderr)
	}
	rep, err := bench.Run(ctx, bc, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteText(stdout)
}

// revokeTimeout bounds the revocation of the bench's key.
const revokeTimeout = 10 * time.Second

// revokeBenchKey revokes the key the run made for itself, even after a
// failed or interrupted run; a failure is a warning on stderr, naming the
// key so that it can be revoked by hand.
func revokeBenchKey(ctx context.Context, url, key, keyID string, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	if err := bench.RevokeKey(ctx, url, key, keyID); err != nil {
		fmt.Fprintf(stderr, "warning: the bench API key %s of %s was not revoked: %v\n", keyID, benchEmail, err)
	}
}

// parseWithCommand parses args, which hold one positional argument (stored
// in command) before, after or among the flags.
func parseWithCommand(flags *flag.FlagSet, args []string, command *string) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		*command, args = args[0], args[1:]
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *command == "" && flags.NArg() > 0 {
		*command = flags.Arg(0)
		if err := flags.Parse(flags.Args()[1:]); err != nil {
			return err
		}
	}
	switch {
	case flags.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	case *command == "":
		flags.Usage()
		return fmt.Errorf("no scenario given")
	}
	return nil
}
