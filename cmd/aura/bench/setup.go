package bench

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// Env is what a scenario works on: the client and the bench clinics.
type Env struct {
	Client  *Client
	Clinics []string // ids
	// Workers is how many setup requests may run at once.
	Workers int
}

// forEach runs fn(ctx, i) for i in [0, n), at most workers at once, and
// returns the first error (which cancels the rest).
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}

// createClinics creates n clinics through the API, workers at once, and
// returns their ids.
func createClinics(ctx context.Context, c *Client, n, workers int) ([]string, error) {
	ids := make([]string, n)
	err := forEach(ctx, n, workers, func(ctx context.Context, i int) error {
		var clinic struct {
			ID string `json:"id"`
		}
		body := map[string]string{
			"name":     fmt.Sprintf("bench %s %d", c.run, i+1),
			"currency": "EUR",
			"timezone": "Europe/Madrid",
		}
		if err := c.create(ctx, "/v1/clinics", body, &clinic); err != nil {
			return fmt.Errorf("create clinic %d: %w", i+1, err)
		}
		ids[i] = clinic.ID
		return nil
	})
	return ids, err
}

// newResource is the id of a resource a setup request created.
type newResource struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"` // of a member
}

// seed creates per resources in each clinic, the j-th of clinic i with
// body(i, j) POSTed to path(its id), and returns their ids, clinic by clinic;
// id picks the id out of the answer.
func seed(ctx context.Context, env *Env, per int, path func(clinic string) string,
	body func(clinic, j int) any, id func(newResource) string) ([][]string, error) {
	ids := make([][]string, len(env.Clinics))
	for i := range ids {
		ids[i] = make([]string, per)
	}
	err := forEach(ctx, len(env.Clinics)*per, env.Workers, func(ctx context.Context, k int) error {
		clinic, j := k/per, k%per
		var out newResource
		if err := env.Client.create(ctx, path(env.Clinics[clinic]), body(clinic, j), &out); err != nil {
			return err
		}
		ids[clinic][j] = id(out)
		return nil
	})
	return ids, err
}
