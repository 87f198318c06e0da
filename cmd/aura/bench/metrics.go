package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// rssMetric is the Prometheus process collector's resident memory gauge.
const rssMetric = "process_resident_memory_bytes"

// serverRSS scrapes the server's /metrics for its resident memory in bytes.
func serverRSS(ctx context.Context, c *Client) (int64, error) {
	body, err := c.get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	return parseGauge(body, rssMetric)
}

// parseGauge returns the value of the unlabelled sample name in a
// Prometheus text exposition.
func parseGauge(exposition []byte, name string) (int64, error) {
	scanner := bufio.NewScanner(bytes.NewReader(exposition))
	scanner.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for scanner.Scan() {
		value, ok := strings.CutPrefix(scanner.Text(), name+" ")
		if !ok {
			continue
		}
		fields := strings.Fields(value) // a timestamp may follow the value
		if len(fields) == 0 {
			return 0, fmt.Errorf("metric %s has no value", name)
		}
		f, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		return int64(f), nil
	}
	if err := scanner.Err(); err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	return 0, fmt.Errorf("metric %s not found in /metrics", name)
}
