package store_test

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aura-clinic/aura/actors/billing"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/schema/dbtest"
	"github.com/aura-clinic/aura/schema/store"
)

// madrid is the time zone of the clinics of these tests.
var madrid = mustLoadLocation("Europe/Madrid")

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// clinic is a clinic with a practitioner, a receptionist and a patient,
// stored with the domain's constructors and deleted when the test ends.
type clinic struct {
	id, practitionerID, receptionID uuid.UUID
	patient                         crm.Patient
}

func newClinic(t *testing.T) clinic {
	t.Helper()
	ctx := testContext(t)
	q := store.New(dbtest.Pool(t))
	c, err := platform.NewClinic("Clínica", "EUR", "Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.InsertClinic(ctx, c); err != nil {
		t.Fatal(err)
	}
	var users []uuid.UUID
	t.Cleanup(func() { // the clinic first: its appointments reference the members
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := dbtest.Pool(t).Exec(ctx, `DELETE FROM clinics WHERE id = $1`, c.ID); err != nil {
			t.Errorf("delete clinic: %v", err)
		}
		if _, err := dbtest.Pool(t).Exec(ctx, `DELETE FROM users WHERE id = ANY($1)`, users); err != nil {
			t.Errorf("delete users: %v", err)
		}
	})
	member := func(role platform.Role) uuid.UUID {
		u, err := platform.NewUser(uuid.NewString()+"@example.com", string(role))
		if err != nil {
			t.Fatal(err)
		}
		if u, _, err = q.EnsureUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
		if _, err := q.InsertMember(ctx, platform.Member{ClinicID: c.ID, UserID: u.ID, Role: role}); err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	p, err := crm.NewPatient(c.ID, crm.PatientFields{FirstName: crm.Some("Ana"), LastName: crm.Some("López")}, dbNow())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.InsertPatient(ctx, p); err != nil {
		t.Fatal(err)
	}
	return clinic{id: c.ID, practitionerID: member(platform.RolePractitioner), receptionID: member(platform.RoleReception), patient: p}
}

// dbNow is the time as the database stores it.
func dbNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// inTx runs f in a transaction of its own on the package's pool and commits
// it unless f fails.
func inTx[T any](t *testing.T, f func(q *store.Queries) (T, error)) (T, error) {
	t.Helper()
	var v T
	err := pgx.BeginFunc(testContext(t), dbtest.Pool(t), func(tx pgx.Tx) error {
		var err error
		v, err = f(store.New(tx))
		return err
	})
	return v, err
}

// issue issues an invoice of lines to the clinic's patient as the
// IssueInvoice command does: numbered in the transaction that stores it.
func (c clinic) issue(ctx context.Context, q *store.Queries, lines ...billing.LineRequest) (billing.Invoice, error) {
	inv, err := billing.NewInvoice(c.id, "EUR", billing.InvoiceRequest{PatientID: c.patient.ID.String(), Lines: lines}, dbNow())
	if err != nil {
		return inv, err
	}
	n, err := q.NextInvoiceNumber(ctx, c.id)
	if err != nil {
		return inv, err
	}
	inv.AssignNumber(n, madrid)
	return inv, q.InsertInvoice(ctx, inv)
}

// issued issues and commits an invoice of total (one untaxed line).
func (c clinic) issued(t *testing.T, total int64) billing.Invoice {
	t.Helper()
	inv, err := inTx(t, func(q *store.Queries) (billing.Invoice, error) {
		return c.issue(testContext(t), q, billing.LineRequest{Description: "Consultation", Quantity: 1, UnitPrice: total})
	})
	if err != nil {
		t.Fatalf("issue invoice: %v", err)
	}
	return inv
}

// invoiceNumbers returns the clinic's stored invoice numbers, in order.
func (c clinic) invoiceNumbers(t *testing.T) []int64 {
	t.Helper()
	rows, err := dbtest.Pool(t).Query(testContext(t), `SELECT number FROM invoices WHERE clinic_id = $1 ORDER BY number`, c.id)
	if err != nil {
		t.Fatal(err)
	}
	numbers, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return numbers
}

// oneTo returns 1, 2, …, n.
func oneTo(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = int64(i + 1)
	}
	return s
}

// Invoices issued by 30 concurrent transactions on one clinic, while 10
// more run on another, are numbered exactly 1..30 and 1..10: no gap, no
// duplicate, and each clinic counts on its own.
func TestNextInvoiceNumberConcurrent(t *testing.T) {
	a, b := newClinic(t), newClinic(t)
	counts := []struct {
		c clinic
		n int
	}{{a, 30}, {b, 10}}

	ctx := testContext(t)
	start := make(chan struct{})
	var mu sync.Mutex
	got := map[uuid.UUID][]int64{}
	var wg sync.WaitGroup
	for _, cn := range counts {
		for range cn.n {
			wg.Go(func() {
				<-start
				var inv billing.Invoice
				err := pgx.BeginFunc(ctx, dbtest.Pool(t), func(tx pgx.Tx) error {
					var err error
					inv, err = cn.c.issue(ctx, store.New(tx), billing.LineRequest{Description: "Consultation", Quantity: 1, UnitPrice: 100})
					return err
				})
				if err != nil {
					t.Errorf("issue invoice: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				got[cn.c.id] = append(got[cn.c.id], inv.Number)
			})
		}
	}
	close(start)
	wg.Wait()

	for _, cn := range counts {
		c, n := cn.c, cn.n
		numbers := got[c.id]
		slices.Sort(numbers)
		if !slices.Equal(numbers, oneTo(n)) {
			t.Errorf("clinic of %d invoices: transactions got numbers %v, want 1..%d", n, numbers, n)
		}
		if stored := c.invoiceNumbers(t); !slices.Equal(stored, oneTo(n)) {
			t.Errorf("clinic of %d invoices: stored numbers %v, want 1..%d", n, stored, n)
		}
	}
}

// backendPID returns the PostgreSQL backend of the transaction.
func backendPID(t *testing.T, tx pgx.Tx) int {
	t.Helper()
	var pid int
	if err := tx.QueryRow(testContext(t), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitForLock returns once the backend pid waits for a lock, failing the
// test after 10 s.
func waitForLock(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		err := dbtest.Pool(t).QueryRow(testContext(t),
			`SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d never waited for a lock", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// begin starts a transaction rolled back when the test ends, unless
// committed or rolled back before.
func begin(t *testing.T) pgx.Tx {
	t.Helper()
	tx, err := dbtest.Pool(t).Begin(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// takeNumber takes the clinic's next number in tx.
func takeNumber(t *testing.T, tx pgx.Tx, clinicID uuid.UUID) (int64, error) {
	return store.New(tx).NextInvoiceNumber(testContext(t), clinicID)
}

// A number taken by a transaction that rolls back is given again: to a
// transaction that was waiting for it (on a clinic's first number, whose
// counter row did not exist yet, and on a later one), and to the next one.
func TestNextInvoiceNumberRollbackLeavesNoGap(t *testing.T) {
	c := newClinic(t)
	for _, want := range []int64{1, 2} {
		first, second := begin(t), begin(t)
		if n, err := takeNumber(t, first, c.id); err != nil || n != want {
			t.Fatalf("first transaction: number %d, %v; want %d", n, err, want)
		}
		pid := backendPID(t, second)
		type answer struct {
			n   int64
			err error
		}
		answered := make(chan answer, 1)
		go func() {
			n, err := takeNumber(t, second, c.id)
			answered <- answer{n, err}
		}()
		waitForLock(t, pid) // the second waits for the first's counter row
		if err := first.Rollback(testContext(t)); err != nil {
			t.Fatal(err)
		}
		got := <-answered
		if got.err != nil || got.n != want {
			t.Fatalf("waiting transaction: number %d, %v; want %d, the number rolled back", got.n, got.err, want)
		}
		if err := second.Commit(testContext(t)); err != nil {
			t.Fatal(err)
		}
	}

	// Rolled back with nobody waiting: the next transaction gets it.
	tx := begin(t)
	if n, err := takeNumber(t, tx, c.id); err != nil || n != 3 {
		t.Fatalf("number %d, %v; want 3", n, err)
	}
	if err := tx.Rollback(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if inv := c.issued(t, 100); inv.Number != 3 {
		t.Errorf("invoice after a rolled-back number: %d, want 3", inv.Number)
	}
}

// Two clinics number their invoices independently, however their issues
// interleave.
func TestInvoiceNumbersPerClinic(t *testing.T) {
	a, b := newClinic(t), newClinic(t)
	for _, step := range []struct {
		c    clinic
		want int64
	}{{a, 1}, {b, 1}, {a, 2}, {a, 3}, {b, 2}, {a, 4}} {
		if inv := step.c.issued(t, 100); inv.Number != step.want {
			t.Errorf("invoice numbered %d, want %d", inv.Number, step.want)
		}
	}
}

// An issued invoice reads back whole: its lines in order, its display
// number in the clinic's zone, an empty (not null) list of payments, and
// later its payments with their refunds; amounts and status follow what was
// recorded through UpdateInvoice and UpdatePayment.
func TestInvoiceRoundTrip(t *testing.T) {
	c := newClinic(t)
	ctx := testContext(t)
	inv, err := inTx(t, func(q *store.Queries) (billing.Invoice, error) {
		return c.issue(ctx, q,
			billing.LineRequest{Description: "Check-up", Quantity: 1, UnitPrice: 5, TaxRateBP: 1000},
			billing.LineRequest{Description: "Gel", Quantity: 3, UnitPrice: 333, TaxRateBP: 1000},
			billing.LineRequest{Description: "Largest", Quantity: billing.MaxQuantity, UnitPrice: billing.MaxUnitPrice, TaxRateBP: billing.MaxTaxRateBP})
	})
	if err != nil {
		t.Fatal(err)
	}
	read, err := store.New(dbtest.Pool(t)).Invoice(ctx, c.id, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (billing.InvoiceDetail{Invoice: inv, Payments: []billing.Payment{}}); !reflect.DeepEqual(read, want) {
		t.Errorf("read back\n %+v\nwant\n %+v", read, want)
	}

	p, err := inTx(t, func(q *store.Queries) (billing.Payment, error) {
		var p billing.Payment
		_, err := q.UpdateInvoice(ctx, c.id, inv.ID, func(inv *billing.Invoice) error {
			var err error
			p, err = inv.RecordPayment(billing.PaymentRequest{Amount: inv.Total, Method: "card"}, dbNow())
			return err
		})
		if err != nil {
			return p, err
		}
		return p, q.InsertPayment(ctx, p)
	})
	if err != nil {
		t.Fatalf("pay off: %v", err)
	}
	r, err := inTx(t, func(q *store.Queries) (billing.Refund, error) {
		var r billing.Refund
		_, err := q.UpdateInvoice(ctx, c.id, inv.ID, func(inv *billing.Invoice) error {
			return q.UpdatePayment(ctx, c.id, p.ID, func(p *billing.Payment) error {
				var err error
				r, err = inv.Refund(p, billing.RefundRequest{Amount: 10, Reason: "goodwill"}, dbNow())
				return err
			})
		})
		if err != nil {
			return r, err
		}
		return r, q.InsertRefund(ctx, r)
	})
	if err != nil {
		t.Fatalf("refund: %v", err)
	}
	read, err = store.New(dbtest.Pool(t)).Invoice(ctx, c.id, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if read.AmountPaid != inv.Total || read.AmountRefunded != 10 || read.BalanceDue != 10 || read.Status != billing.StatusIssued {
		t.Errorf("after paying off and refunding 10: %+v", read.Invoice)
	}
	p.AmountRefunded, p.Refunds = 10, []billing.Refund{r}
	if !reflect.DeepEqual(read.Payments, []billing.Payment{p}) {
		t.Errorf("payments read back\n %+v\nwant\n %+v", read.Payments, []billing.Payment{p})
	}
}

// UpdateInvoice answers payment_exceeds_balance, not an internal error,
// when an update that skipped the domain's check breaks the invoices_balance
// constraint, and nothing is written.
func TestUpdateInvoiceMapsBalanceViolation(t *testing.T) {
	c := newClinic(t)
	inv := c.issued(t, 1000)
	ctx := testContext(t)
	_, err := inTx(t, func(q *store.Queries) (billing.Invoice, error) {
		return q.UpdateInvoice(ctx, c.id, inv.ID, func(inv *billing.Invoice) error {
			inv.AmountPaid = inv.Total + 1 // what RecordPayment would have refused
			return nil
		})
	})
	if !fault.HasCode(err, billing.ErrPaymentExceedsBalance) {
		t.Fatalf("err = %v, want payment_exceeds_balance", err)
	}
	read, err := store.New(dbtest.Pool(t)).Invoice(ctx, c.id, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if read.AmountPaid != 0 || read.Status != billing.StatusIssued {
		t.Errorf("invoice after a refused update: %+v", read.Invoice)
	}
}

// UpdatePayment answers refund_exceeds_payment, not an internal error, when
// an update that skipped the domain's check breaks the payments_refunds
// constraint, and nothing is written.
func TestUpdatePaymentMapsRefundViolation(t *testing.T) {
	c := newClinic(t)
	inv := c.issued(t, 1000)
	ctx := testContext(t)
	p := billing.Payment{ID: uuid.New(), ClinicID: c.id, InvoiceID: inv.ID, Amount: 500, Method: billing.MethodCash, CreatedAt: dbNow()}
	if _, err := inTx(t, func(q *store.Queries) (struct{}, error) { return struct{}{}, q.InsertPayment(ctx, p) }); err != nil {
		t.Fatal(err)
	}
	_, err := inTx(t, func(q *store.Queries) (struct{}, error) {
		return struct{}{}, q.UpdatePayment(ctx, c.id, p.ID, func(p *billing.Payment) error {
			p.AmountRefunded = p.Amount + 1 // what Refund would have refused
			return nil
		})
	})
	if !fault.HasCode(err, billing.ErrRefundExceedsPayment) {
		t.Fatalf("err = %v, want refund_exceeds_payment", err)
	}
	read, err := store.New(dbtest.Pool(t)).Payment(ctx, c.id, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if read.AmountRefunded != 0 {
		t.Errorf("payment after a refused update: %+v", read)
	}
}

// InsertAppointment answers the domain's errors when a constraint catches
// what the domain's checks did not: an overlap is appointment_conflict
// (409, never 500), a practitioner who is not one is not_a_practitioner.
func TestInsertAppointmentMapsConstraints(t *testing.T) {
	c := newClinic(t)
	ctx := testContext(t)
	book := func(practitioner uuid.UUID, from, to string) error {
		a, err := crm.NewAppointment(c.id, crm.Booking{PatientID: c.patient.ID.String(), PractitionerID: practitioner.String(),
			StartsAt: "2026-12-03T" + from + ":00Z", EndsAt: "2026-12-03T" + to + ":00Z"}, dbNow())
		if err != nil {
			t.Fatal(err)
		}
		_, err = inTx(t, func(q *store.Queries) (struct{}, error) { return struct{}{}, q.InsertAppointment(ctx, a) })
		return err
	}
	if err := book(c.practitionerID, "10:00", "11:00"); err != nil {
		t.Fatalf("first booking: %v", err)
	}
	if err := book(c.practitionerID, "10:59", "11:30"); !fault.HasCode(err, crm.ErrAppointmentConflict) {
		t.Errorf("overlapping booking: err = %v, want appointment_conflict", err)
	}
	if err := book(c.practitionerID, "11:00", "11:30"); err != nil {
		t.Errorf("back-to-back booking: %v", err)
	}
	if err := book(c.receptionID, "10:00", "11:00"); !fault.HasCode(err, crm.ErrNotAPractitioner) {
		t.Errorf("booking a receptionist: err = %v, want not_a_practitioner", err)
	}
}
