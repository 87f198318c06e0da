package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

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
	flags.StringVar(&bc.APIKey, "api-key", "", "an API key to use; without one, the bench user "+benchEmail+" gets a new key from AURA_DATABASE_URL")
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
		res, err := createUser(ctx, cfg, logger, commands.CreateUser{Email: benchEmail, Name: benchName, KeyName: "bench"})
		if err != nil {
			return fmt.Errorf("create the bench user: %w", err)
		}
		bc.APIKey = res.Key.Key
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
