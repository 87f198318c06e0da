package messaging

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// StatusCollector exports the outbox status as Prometheus gauges, read from
// the database at each scrape.
type StatusCollector struct {
	pool                                   *pgxpool.Pool
	pending, processed, failed, oldestDesc *prometheus.Desc
}

// NewStatusCollector returns a collector of the outbox status.
func NewStatusCollector(pool *pgxpool.Pool) *StatusCollector {
	return &StatusCollector{
		pool:       pool,
		pending:    prometheus.NewDesc("aura_outbox_pending_events", "Events in the outbox not yet forwarded.", nil, nil),
		processed:  prometheus.NewDesc("aura_outbox_processed_events", "Forwarded events still in the outbox (until cleanup).", nil, nil),
		failed:     prometheus.NewDesc("aura_consumer_failed_events", "Events a consumer gave up on after its retries.", nil, nil),
		oldestDesc: prometheus.NewDesc("aura_outbox_oldest_pending_seconds", "Age of the oldest event not yet forwarded.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StatusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.processed
	ch <- c.failed
	ch <- c.oldestDesc
}

// Collect implements prometheus.Collector.
func (c *StatusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Status(ctx, c.pool)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(c.processed, prometheus.GaugeValue, float64(s.Processed))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(c.oldestDesc, prometheus.GaugeValue, s.OldestPending.Seconds())
}
