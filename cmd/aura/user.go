package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/actors/fault"
)

// userCommand runs `aura user create --email E --name N`: it creates the user
// (or finds the existing one with that email) and prints a new API key. The
// key alone is the last line of stdout, so scripts can take it with tail -n1.
func userCommand(ctx context.Context, cfg config, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: aura user create --email E --name N [--key-name K]")
	}
	flags := flag.NewFlagSet("user create", flag.ContinueOnError)
	flags.SetOutput(stderr)
	email := flags.String("email", "", "the user's email (required)")
	name := flags.String("name", "", "the user's name (required for a new user)")
	keyName := flags.String("key-name", "cli", "a label for the new key")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() > 0 { // e.g. --name Ana Lopez without quotes
		return fmt.Errorf("unexpected arguments %q: quote values that contain spaces", flags.Args())
	}
	if *email == "" {
		return errors.New("--email is required")
	}
	res, err := createUser(ctx, cfg, logger, commands.CreateUser{Email: *email, Name: *name, KeyName: *keyName})
	if err != nil {
		return err
	}
	verb := "found existing"
	if res.Created {
		verb = "created"
	}
	fmt.Fprintf(stdout, "%s user %s <%s> (id %s)\n", verb, res.User.Name, res.User.Email, res.User.ID)
	fmt.Fprintf(stdout, "API key %s (shown once; store it now):\n", res.Key.ID)
	fmt.Fprintln(stdout, res.Key.Key)
	return nil
}

// createUser creates the user (or finds the one with that email) in the
// configured database and gives them a new API key, as `aura user create`
// and `aura bench` do.
func createUser(ctx context.Context, cfg config, logger *slog.Logger, cmd commands.CreateUser) (commands.UserWithKey, error) {
	pool, err := openDatabase(ctx, cfg, logger, cfg.AutoMigrate)
	if err != nil {
		return commands.UserWithKey{}, err
	}
	defer pool.Close()
	res, _, err := actors.Exec(ctx, actors.NewExecutor(pool, logger), actors.Meta{RequestID: "cli"}, cmd)
	if err != nil {
		return commands.UserWithKey{}, explain(err)
	}
	return res, nil
}

// explain turns a validation error into a message for the terminal.
func explain(err error) error {
	e := fault.From(err)
	if len(e.Fields) == 0 {
		return err
	}
	msg := e.Detail
	for _, f := range e.Fields {
		msg += fmt.Sprintf("\n  --%s %s", f.Pointer[1:], f.Detail)
	}
	return errors.New(msg)
}
