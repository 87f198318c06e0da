// Package bench is `aura bench`, Aura's load generator. It creates clinics
// (and what a scenario needs in them) through the HTTP API, sends the
// scenario's requests from concurrent workers, closed loop or at a fixed
// rate, follows the clinics' event streams to measure event delivery, and
// reports throughput, latency percentiles, answers by status and problem
// code, event latency and backlog, and the server's memory. The event
// latency runs from the moment the server wrote the event (its occurred_at,
// stamped before the commit, on the server's clock) to its arrival at the
// bench's stream client (on the bench's clock): when the bench runs on
// another host, the clock skew between the hosts is part of it.
package bench

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config is what a run does.
type Config struct {
	Scenario string // one of ScenarioNames
	URL      string // the API's base URL
	APIKey   string
	// Duration is the measured window; Warmup runs before it, unmeasured.
	// Bounded scenarios (clinics) ignore both and run until done.
	Duration time.Duration
	Warmup   time.Duration
	// Concurrency is the number of workers.
	Concurrency int
	// Clinics is how many clinics the run creates and spreads its load over.
	Clinics int
	// Rate is the open-loop request rate per second; 0 sends as fast as the
	// workers can (closed loop).
	Rate float64
	// Streams bounds how many clinics' event streams are followed (the
	// first ones created).
	Streams int
	// Drain is how long to wait after the load for events still on their way.
	Drain time.Duration
}

// DefaultConfig returns the defaults of the command line.
func DefaultConfig() Config {
	return Config{
		URL:         "http://127.0.0.1:8080",
		Duration:    30 * time.Second,
		Warmup:      3 * time.Second,
		Concurrency: 32,
		Clinics:     16,
		Streams:     256,
		Drain:       5 * time.Second,
	}
}

// validate checks c, naming the flag at fault.
func (c Config) validate() error {
	err := c.ValidateFlags()
	if c.APIKey == "" {
		err = errors.Join(err, errors.New("no API key"))
	}
	return err
}

// ValidateFlags checks c but for its API key, naming the flag at fault: a
// caller that makes a key for the run checks the rest first.
func (c Config) ValidateFlags() error {
	var errs []error
	if _, err := newScenario(c.Scenario); err != nil {
		errs = append(errs, err)
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--url %q is not an http(s) URL", c.URL))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration %v must be positive", c.Duration))
	}
	if c.Warmup < 0 || c.Drain < 0 {
		errs = append(errs, errors.New("--warmup and --drain must not be negative"))
	}
	if c.Concurrency < 1 || c.Clinics < 1 || c.Streams < 0 {
		errs = append(errs, errors.New("--concurrency and --clinics must be at least 1, --streams at least 0"))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate %g must not be negative", c.Rate))
	}
	return errors.Join(errs...)
}
