package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
)

// Scenario is a kind of load: what to create first, and which request each
// worker sends next.
type Scenario interface {
	// Prepare creates what the scenario needs in env's clinics.
	Prepare(ctx context.Context, env *Env) error
	// Next returns the next request, drawn with r (the worker's own), or
	// false when the scenario has nothing more to send.
	Next(r *rand.Rand) (Op, bool)
}

// bounded is a scenario with a fixed amount of work: it runs without warm-up
// until Next says it is done, whatever the duration.
type bounded interface {
	Scenario
	bounded()
}

// Op is one request of a scenario.
type Op struct {
	Method string
	Path   string
	Body   any // sent as JSON unless nil
	// Clinic is the index of the clinic the request is for.
	Clinic int
	// Done, when set, is called with the body of a 2xx answer.
	Done func(body []byte)
}

// write reports whether the op changes something (and so emits events).
func (o Op) write() bool { return o.Method != http.MethodGet }

// ScenarioNames returns the scenarios' names, as the command line takes them.
func ScenarioNames() []string { return []string{"write", "mixed", "booking", "payments", "clinics"} }

// newScenario returns the scenario called name.
func newScenario(name string) (Scenario, error) {
	switch name {
	case "write":
		return &writeScenario{}, nil
	case "mixed":
		return &mixedScenario{}, nil
	case "booking":
		return &bookingScenario{}, nil
	case "payments":
		return &paymentsScenario{}, nil
	case "clinics":
		return &clinicsScenario{}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(ScenarioNames(), ", "))
}

// clinicPath is the path of a clinic's sub-resource.
func clinicPath(clinic string, parts ...string) string {
	return "/v1/clinics/" + clinic + strings.Join(append([]string{""}, parts...), "/")
}
