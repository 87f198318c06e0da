package bench

import (
	"strings"
	"testing"
)

func TestReadEvents(t *testing.T) {
	stream := "id: 1\nevent: crm.patient.created\ndata: {\"a\":1}\n\n" +
		": keep-alive\n\n" +
		"id: 2\nevent: x\ndata: line one\ndata: line two\n\n" +
		"data:no space\n\n" +
		"id: 3\nevent: unfinished\ndata: {}\n" // no blank line: not dispatched
	var got []sseEvent
	if err := readEvents(strings.NewReader(stream), func(e sseEvent) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	want := []sseEvent{
		{ID: "1", Event: "crm.patient.created", Data: []byte(`{"a":1}`)},
		{ID: "2", Event: "x", Data: []byte("line one\nline two")},
		{Data: []byte("no space")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Event != want[i].Event || string(got[i].Data) != string(want[i].Data) {
			t.Errorf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestParseGauge(t *testing.T) {
	exposition := "# HELP process_resident_memory_bytes Resident memory size in bytes.\n" +
		"# TYPE process_resident_memory_bytes gauge\n" +
		"process_resident_memory_bytes_other 1\n" +
		"process_resident_memory_bytes 4.4126208e+07\n"
	n, err := parseGauge([]byte(exposition), rssMetric)
	if err != nil || n != 44126208 {
		t.Errorf("parseGauge = %d, %v; want 44126208", n, err)
	}
	if _, err := parseGauge([]byte("go_goroutines 8\n"), rssMetric); err == nil {
		t.Error("parseGauge found a metric that is not there")
	}
}
