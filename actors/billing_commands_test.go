package actors_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/billing"
	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// practice is a clinic with its owner, a practitioner and a patient, all
// made through the commands.
type practice struct {
	clinicID, ownerID, practitionerID, patientID uuid.UUID
	zone                                         *time.Location
}

func newPractice(t *testing.T) practice {
	t.Helper()
	ctx, exec := testContext(t), newExecutor(t)
	p := practice{ownerID: newUser(t)}
	cm, _, err := actors.Exec(ctx, exec, actors.Meta{RequestID: t.Name(), UserID: p.ownerID},
		commands.CreateClinic{Name: "Clínica", Currency: "EUR", Timezone: "Europe/Madrid"})
	if err != nil {
		t.Fatalf("create clinic: %v", err)
	}
	p.clinicID = cm.ID
	if p.zone, err = time.LoadLocation(cm.Timezone); err != nil {
		t.Fatal(err)
	}
	member, _, err := actors.Exec(ctx, exec, p.meta(t), commands.AddMember{
		Email: uuid.NewString() + "@example.com", Name: "Dr. Ruiz", Role: "practitioner", GranterRole: platform.RoleOwner})
	if err != nil {
		t.Fatalf("add practitioner: %v", err)
	}
	p.practitionerID = member.UserID
	patient, _, err := actors.Exec(ctx, exec, p.meta(t), createPatient)
	if err != nil {
		t.Fatalf("create patient: %v", err)
	}
	p.patientID = patient.ID
	return p
}

// meta is the Meta of the owner's writes to the clinic.
func (p practice) meta(t *testing.T) actors.Meta {
	m := metaFor(t, p.clinicID)
	m.UserID = p.ownerID
	return m
}

// issueInvoice is the command issuing an invoice of total (one untaxed line)
// to the patient.
func (p practice) issueInvoice(total int64) commands.IssueInvoice {
	return commands.IssueInvoice{Currency: "EUR", Timezone: p.zone, Request: billing.InvoiceRequest{
		PatientID: p.patientID.String(),
		Lines:     []billing.LineRequest{{Description: "Treatment", Quantity: 1, UnitPrice: total}},
	}}
}

// invoice issues an invoice of total through d.
func (p practice) invoice(t *testing.T, d actors.Dispatcher, total int64) billing.Invoice {
	t.Helper()
	inv, _, err := actors.Exec(testContext(t), d, p.meta(t), p.issueInvoice(total))
	if err != nil {
		t.Fatalf("issue invoice: %v", err)
	}
	return inv
}

// stored reads an invoice as committed, with its payments and refunds.
func (p practice) stored(t *testing.T, invoiceID uuid.UUID) billing.InvoiceDetail {
	t.Helper()
	inv, err := store.New(dbtest.Pool(t)).Invoice(testContext(t), p.clinicID, invoiceID)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// booking books the practitioner from–to (hh:mm UTC on 2026-12-03).
func (p practice) booking(from, to string) commands.BookAppointment {
	return commands.BookAppointment{CallerRole: platform.RoleReception, Booking: crm.Booking{
		PatientID: p.patientID.String(), PractitionerID: p.practitionerID.String(),
		StartsAt: "2026-12-03T" + from + ":00Z", EndsAt: "2026-12-03T" + to + ":00Z",
	}}
}

// processes returns n registries on executors of their own, as n processes
// hosting the same clinic's actor would have.
func processes(t *testing.T, n int) []actors.Dispatcher {
	d := make([]actors.Dispatcher, n)
	for i := range d {
		d[i] = newRegistry(t, actors.Config{})
	}
	return d
}

// runConcurrently runs n commands at once, the i-th made by cmd(i) and sent
// through dispatchers[i % len(dispatchers)], and returns their outcomes in
// the order of i.
func runConcurrently[T any](t *testing.T, m actors.Meta, dispatchers []actors.Dispatcher, n int, cmd func(i int) actors.Command[T]) []outcome[T] {
	t.Helper()
	ctx := testContext(t)
	start := make(chan struct{})
	out := make([]outcome[T], n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			v, _, err := actors.Exec(ctx, dispatchers[i%len(dispatchers)], m, cmd(i))
			out[i] = outcome[T]{v, err}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// accepted returns the values of the outcomes that succeeded, failing the
// test for any error but one with code refused.
func accepted[T any](t *testing.T, outcomes []outcome[T], refused fault.Code) []T {
	t.Helper()
	var ok []T
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			ok = append(ok, o.value)
		case !fault.HasCode(o.err, refused):
			t.Errorf("error %v, want success or %s", o.err, refused.Name())
		}
	}
	return ok
}

// Concurrent payments that together exceed the invoice's total never take
// it over: whether one process's actor serialises them or two processes
// race on the invoice's row, exactly as many are accepted as fit, the rest
// are payment_exceeds_balance, and what is stored adds up.
func TestConcurrentPaymentsNeverExceedTotal(t *testing.T) {
	const total, payments = 1000, 20
	for _, procs := range []int{1, 2} {
		for _, tt := range []struct {
			amount int64
			status billing.InvoiceStatus
		}{{300, billing.StatusIssued}, {250, billing.StatusPaid}} {
			t.Run(fmt.Sprintf("%d processes, payments of %d", procs, tt.amount), func(t *testing.T) {
				p, dispatchers := newPractice(t), processes(t, procs)
				inv := p.invoice(t, dispatchers[0], total)
				out := runConcurrently(t, p.meta(t), dispatchers, payments, func(int) actors.Command[billing.Payment] {
					return commands.RecordPayment{InvoiceID: inv.ID, Request: billing.PaymentRequest{Amount: tt.amount, Method: "cash"}}
				})
				ok := accepted(t, out, billing.ErrPaymentExceedsBalance)
				if want := int(total / tt.amount); len(ok) != want {
					t.Errorf("%d payments of %d accepted on a total of %d, want %d", len(ok), tt.amount, total, want)
				}
				got := p.stored(t, inv.ID)
				paid := int64(len(ok)) * tt.amount
				if got.AmountPaid != paid || got.AmountPaid > total || len(got.Payments) != len(ok) ||
					got.BalanceDue != total-paid || got.Status != tt.status {
					t.Errorf("stored invoice: paid %d by %d payments, due %d, %s; want paid %d by %d, due %d, %s",
						got.AmountPaid, len(got.Payments), got.BalanceDue, got.Status, paid, len(ok), total-paid, tt.status)
				}
			})
		}
	}
}

// Concurrent refunds of one payment from two processes never exceed it:
// exactly as many are accepted as fit, the rest are refund_exceeds_payment,
// and the invoice is issued again with what was refunded due.
func TestConcurrentRefundsNeverExceedPayment(t *testing.T) {
	const total, refunds, amount = 1000, 20, 150
	p, dispatchers := newPractice(t), processes(t, 2)
	inv := p.invoice(t, dispatchers[0], total)
	payment, _, err := actors.Exec(testContext(t), dispatchers[1], p.meta(t),
		commands.RecordPayment{InvoiceID: inv.ID, Request: billing.PaymentRequest{Amount: total, Method: "card"}})
	if err != nil {
		t.Fatal(err)
	}
	out := runConcurrently(t, p.meta(t), dispatchers, refunds, func(int) actors.Command[billing.Refund] {
		return commands.RecordRefund{PaymentID: payment.ID, Request: billing.RefundRequest{Amount: amount, Reason: "overcharged"}}
	})
	ok := accepted(t, out, billing.ErrRefundExceedsPayment)
	if want := total / amount; len(ok) != want {
		t.Errorf("%d refunds of %d accepted on a payment of %d, want %d", len(ok), amount, total, want)
	}
	got := p.stored(t, inv.ID)
	refunded := int64(len(ok)) * amount
	if got.AmountRefunded != refunded || len(got.Payments) != 1 || got.Payments[0].AmountRefunded != refunded ||
		len(got.Payments[0].Refunds) != len(ok) || got.BalanceDue != refunded || got.Status != billing.StatusIssued {
		t.Errorf("stored invoice after %d refunds of %d: %+v", len(ok), amount, got)
	}
}

// gate holds commands until it is opened; it is opened when the test ends
// at the latest, so that no registry waits forever on a held command.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open) // runs before the cleanups of registries made earlier
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// holdOpen is cmd whose transaction, once cmd has run, stays open (holding
// its locks and uncommitted rows) until g opens; ran is closed when cmd has
// run.
func holdOpen[T any](cmd actors.Command[T], ran chan<- struct{}, g *gate) actors.Command[T] {
	return commandFunc[T](func(ctx context.Context, q *store.Queries, m actors.Meta) (T, error) {
		v, err := cmd.Execute(ctx, q, m)
		close(ran)
		<-g.ch
		return v, err
	})
}

// waitForLockedStatement returns once a statement of the package's
// database containing fragment waits for a lock.
func waitForLockedStatement(t *testing.T, fragment string) {
	t.Helper()
	eventually(t, "a statement with "+fragment+" waits for a lock", func() bool {
		var n int
		err := dbtest.Pool(t).QueryRow(testContext(t), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`, fragment).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
}

// When two processes pay one invoice at the same moment, the second waits
// for the first's lock on the clinic, then sees its payment: a payment
// that no longer fits is payment_exceeds_balance, not a lost update.
func TestPaymentWaitsForTheOtherProcess(t *testing.T) {
	p, procs := newPractice(t), processes(t, 2)
	inv := p.invoice(t, procs[0], 1000)
	pay := func(amount int64) commands.RecordPayment {
		return commands.RecordPayment{InvoiceID: inv.ID, Request: billing.PaymentRequest{Amount: amount, Method: "cash"}}
	}
	ran, release := make(chan struct{}), newGate(t)
	first := goExec(testContext(t), procs[0], p.meta(t), holdOpen[billing.Payment](pay(700), ran, release))
	receive(t, "the first payment to run", ran)
	second := goExec(testContext(t), procs[1], p.meta(t), actors.Command[billing.Payment](pay(500)))
	waitForLockedStatement(t, "pg_advisory_xact_lock")
	release.open()

	if o := receive(t, "the first payment", first); o.err != nil {
		t.Fatalf("first payment: %v", o.err)
	}
	o := receive(t, "the second payment", second)
	wantCode(t, o.err, billing.ErrPaymentExceedsBalance)
	if got := p.stored(t, inv.ID); got.AmountPaid != 700 || len(got.Payments) != 1 {
		t.Errorf("stored: paid %d by %d payments, want 700 by 1", got.AmountPaid, len(got.Payments))
	}
}

// When two processes book overlapping slots at the same moment, the second
// waits for the first's lock on the clinic, then sees its appointment: it is
// answered appointment_conflict, never an internal error or a deadlock, with
// or without an idempotency key (whose outcome is then stored and replayed).
// (The exclusion constraint behind it is tested in the schema and store.)
func TestBookingConflictAcrossProcesses(t *testing.T) {
	for _, withKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotency key %v", withKey), func(t *testing.T) {
			p, procs := newPractice(t), processes(t, 2)
			m := p.meta(t)
			if withKey {
				m = keyed(m, "book-"+uuid.NewString(), "POST appointments 10:30")
			}
			ran, release := make(chan struct{}), newGate(t)
			first := goExec(testContext(t), procs[0], p.meta(t), holdOpen[crm.Appointment](p.booking("10:00", "11:00"), ran, release))
			receive(t, "the first booking to run", ran)
			second := goExec(testContext(t), procs[1], m, actors.Command[crm.Appointment](p.booking("10:30", "11:30")))
			waitForLockedStatement(t, "pg_advisory_xact_lock")
			release.open()

			if o := receive(t, "the first booking", first); o.err != nil {
				t.Fatalf("first booking: %v", o.err)
			}
			wantCode(t, receive(t, "the second booking", second).err, crm.ErrAppointmentConflict)
			if withKey {
				_, replayed, err := actors.Exec(testContext(t), procs[0], m, p.booking("10:30", "11:30"))
				if !replayed || !fault.HasCode(err, crm.ErrAppointmentConflict) {
					t.Errorf("retry with the key: replayed %v, err %v; want the stored appointment_conflict", replayed, err)
				}
			}
			if n := p.bookedCount(t); n != 1 {
				t.Errorf("%d booked appointments, want 1", n)
			}
		})
	}
}

// bookedCount counts the practitioner's booked appointments, as committed.
func (p practice) bookedCount(t *testing.T) int {
	t.Helper()
	list, err := store.New(dbtest.Pool(t)).ListAppointments(testContext(t), p.clinicID,
		crm.AppointmentFilter{PractitionerID: p.practitionerID, Status: crm.StatusBooked}, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// Concurrent bookings of overlapping slots for one practitioner, sent
// through two processes, end with exactly one booked; every other one is
// appointment_conflict.
func TestConcurrentBookingsOneWins(t *testing.T) {
	const bookings = 10
	p, procs := newPractice(t), processes(t, 2)
	out := runConcurrently(t, p.meta(t), procs, bookings, func(i int) actors.Command[crm.Appointment] {
		return p.booking(fmt.Sprintf("10:%02d", i*5), fmt.Sprintf("11:%02d", i)) // every pair overlaps
	})
	if ok := accepted(t, out, crm.ErrAppointmentConflict); len(ok) != 1 {
		t.Errorf("%d bookings succeeded, want exactly 1", len(ok))
	}
	if n := p.bookedCount(t); n != 1 {
		t.Errorf("%d booked appointments, want 1", n)
	}
}

// Invoices issued at once through two processes are numbered exactly
// 1..n.
func TestConcurrentInvoiceNumbersAcrossProcesses(t *testing.T) {
	const invoices = 20
	p, procs := newPractice(t), processes(t, 2)
	out := runConcurrently(t, p.meta(t), procs, invoices, func(int) actors.Command[billing.Invoice] { return p.issueInvoice(100) })
	var numbers []int64
	for _, o := range out {
		if o.err != nil {
			t.Fatalf("issue invoice: %v", o.err)
		}
		numbers = append(numbers, o.value.Number)
	}
	slices.Sort(numbers)
	for i, n := range numbers {
		if n != int64(i+1) {
			t.Fatalf("numbers %v, want 1..%d", numbers, invoices)
		}
	}
}

// An issue that fails after taking its number takes the number back: the
// next invoice gets it. This holds for an error stored under an
// idempotency key (only the command's savepoint is rolled back), a plain
// error and a panic.
func TestFailedIssueLeavesNoGap(t *testing.T) {
	failures := []struct {
		name string
		key  bool
		fail func() error
	}{
		{"stored domain error", true, func() error { return billing.ErrAppointmentMismatch.New("after the number") }},
		{"internal error", false, func() error { return fmt.Errorf("disk on fire") }},
		{"panic", false, func() error { panic("after the number") }},
	}
	p := newPractice(t)
	r := newRegistry(t, actors.Config{})
	if inv := p.invoice(t, r, 100); inv.Number != 1 {
		t.Fatalf("first invoice numbered %d", inv.Number)
	}
	for _, f := range failures {
		m := p.meta(t)
		if f.key {
			m = keyed(m, "issue-"+uuid.NewString(), "POST invoices")
		}
		_, _, err := actors.Exec(testContext(t), r, m, commandFunc[billing.Invoice](
			func(ctx context.Context, q *store.Queries, m actors.Meta) (billing.Invoice, error) {
				inv, err := p.issueInvoice(100).Execute(ctx, q, m)
				if err != nil {
					return inv, err
				}
				if inv.Number != 2 {
					t.Errorf("%s: the failing issue took number %d, want 2", f.name, inv.Number)
				}
				return inv, f.fail()
			}))
		if err == nil {
			t.Fatalf("%s: the failing issue succeeded", f.name)
		}
	}
	if inv := p.invoice(t, r, 100); inv.Number != 2 || inv.DisplayNumber != fmt.Sprintf("%d-000002", inv.IssuedAt.In(p.zone).Year()) {
		t.Errorf("invoice after %d failures: %d (%s), want 2", len(failures), inv.Number, inv.DisplayNumber)
	}
}
