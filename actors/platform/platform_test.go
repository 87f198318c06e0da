package platform_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/fault/faulttest"
	"github.com/aura-clinic/aura/actors/platform"
)

// wantFields checks that err is a validation error on exactly the pointers
// of want, with those codes ("" for any code).
func wantFields(t *testing.T, err error, want map[string]string) {
	t.Helper()
	got := faulttest.FieldCodes(t, err)
	if len(got) != len(want) {
		t.Fatalf("field errors = %v, want %v", got, want)
	}
	for ptr, code := range want {
		c, ok := got[ptr]
		if !ok || (code != "" && c != code) {
			t.Fatalf("field errors = %v, want %v", got, want)
		}
	}
}

// emailOfLength returns a valid address exactly n bytes long (n >= 20).
func emailOfLength(n int) string {
	const tail = ".example.com"
	local := "ana@"
	domainLen := n - len(local) - len(tail)
	var labels []string
	for domainLen > 0 {
		l := min(domainLen, 60)
		if domainLen-l == 1 { // avoid an empty label
			l--
		}
		labels = append(labels, strings.Repeat("d", l))
		domainLen -= l + 1
	}
	return local + strings.Join(labels, ".") + tail
}

// TestRoleMatrix proves Can follows the grants table exactly, as the README
// documents it: every role reads the clinic and its patients; owner, admin
// and reception write patients; only owner and admin manage members;
// everyone but billing reads and writes appointments; only owner, admin and
// billing read and write billing; an unknown role may nothing.
func TestRoleMatrix(t *testing.T) {
	perms := []platform.Permission{
		platform.ReadClinic, platform.ManageMembers, platform.ReadPatients, platform.WritePatients,
		platform.ReadAppointments, platform.WriteAppointments, platform.ReadBilling, platform.WriteBilling,
	}
	const o, x = true, false
	want := map[platform.Role][8]bool{ // in the order of perms
		platform.RoleOwner:        {o, o, o, o, o, o, o, o},
		platform.RoleAdmin:        {o, o, o, o, o, o, o, o},
		platform.RolePractitioner: {o, x, o, x, o, o, x, x},
		platform.RoleReception:    {o, x, o, o, o, o, x, x},
		platform.RoleBilling:      {o, x, o, x, x, x, o, o},
		platform.Role(""):         {x, x, x, x, x, x, x, x},
		platform.Role("root"):     {x, x, x, x, x, x, x, x},
	}
	for role, row := range want {
		for i, p := range perms {
			if got := role.Can(p); got != row[i] {
				t.Errorf("Role(%q).Can(%s) = %v, want %v", role, p, got, row[i])
			}
		}
	}
	for _, role := range platform.Roles {
		if _, ok := want[role]; !ok {
			t.Errorf("role %s is missing from the matrix", role)
		}
	}
	if role := platform.RoleOwner; role.Can(platform.Permission("clinic:delete")) {
		t.Errorf("owner may an undeclared permission")
	}
}

// TestOwnAppointmentsOnly proves only practitioners are kept to their own
// appointments; every other role that writes appointments writes anyone's.
func TestOwnAppointmentsOnly(t *testing.T) {
	for _, role := range append(platform.Roles, "", "root") {
		if got, want := role.OwnAppointmentsOnly(), role == platform.RolePractitioner; got != want {
			t.Errorf("Role(%q).OwnAppointmentsOnly() = %v, want %v", role, got, want)
		}
	}
}

// TestCanGrant proves owners grant every role, admins every role but owner,
// and no other role grants anything.
func TestCanGrant(t *testing.T) {
	for _, granter := range append(platform.Roles, "") {
		for _, target := range platform.Roles {
			want := granter == platform.RoleOwner ||
				(granter == platform.RoleAdmin && target != platform.RoleOwner)
			if got := granter.CanGrant(target); got != want {
				t.Errorf("Role(%q).CanGrant(%s) = %v, want %v", granter, target, got, want)
			}
		}
	}
}

// TestAddMember proves AddMember enforces CanGrant with role_not_grantable
// and otherwise copies the user into the membership.
func TestAddMember(t *testing.T) {
	user, err := platform.NewUser("ana@example.com", "Ana")
	if err != nil {
		t.Fatal(err)
	}
	clinicID := uuid.New()
	if _, err := platform.AddMember(platform.RoleAdmin, clinicID, user, platform.RoleOwner); !fault.HasCode(err, platform.ErrRoleNotGrantable) {
		t.Errorf("admin granting owner: err = %v, want role_not_grantable", err)
	}
	if _, err := platform.AddMember(platform.RoleReception, clinicID, user, platform.RoleBilling); !fault.HasCode(err, platform.ErrRoleNotGrantable) {
		t.Errorf("reception granting billing: err = %v, want role_not_grantable", err)
	}
	m, err := platform.AddMember(platform.RoleAdmin, clinicID, user, platform.RolePractitioner)
	if err != nil {
		t.Fatalf("admin granting practitioner: %v", err)
	}
	want := platform.Member{ClinicID: clinicID, UserID: user.ID, Email: user.Email, Name: user.Name, Role: platform.RolePractitioner}
	if m != want {
		t.Errorf("member = %+v, want %+v", m, want)
	}
}

// TestParseRole proves ParseRole accepts exactly the five role names, case
// sensitively.
func TestParseRole(t *testing.T) {
	for _, r := range platform.Roles {
		got, err := platform.ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if len(platform.Roles) != 5 {
		t.Errorf("Roles = %v, want the five roles of the issue", platform.Roles)
	}
	for _, s := range []string{"", "Owner", "OWNER", " owner", "superuser"} {
		if got, err := platform.ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) = %q, want an error", s, got)
		}
	}
}

// TestNormalizeEmail proves plain addresses are trimmed and lower-cased and
// anything else (display names, several addresses, whitespace inside,
// over-long) is rejected.
func TestNormalizeEmail(t *testing.T) {
	ok := []struct{ in, want string }{
		{"ana@example.com", "ana@example.com"},
		{"Ana.Lopez@Example.COM", "ana.lopez@example.com"},
		{"  ana@example.com\t", "ana@example.com"},
		{"ana+tag@sub.example.es", "ana+tag@sub.example.es"},
		{emailOfLength(254), emailOfLength(254)},
	}
	for _, tt := range ok {
		got, err := platform.NormalizeEmail(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	bad := []string{
		"",
		"   ",
		"ana",
		"ana@",
		"@example.com",
		"Ana <ana@example.com>",
		"<ana@example.com>",
		`"Ana" <ana@example.com>`,
		"ana@example.com, bea@example.com",
		`"ana lopez"@example.com`,
		"ana lopez@example.com",
		"ana\u3000lopez@example.com", // whitespace PostgreSQL's [:space:] rejects
		"ana\u2003@example.com",
		emailOfLength(255),
	}
	for _, in := range bad {
		if got, err := platform.NormalizeEmail(in); err == nil {
			t.Errorf("NormalizeEmail(%q) = %q, want an error", in, got)
		}
	}
}

// TestNormalizeEmailRejectsEveryWhitespace proves no Unicode whitespace
// character gets through inside an address: the database's users_email_shape
// check rejects them, so accepting one in Go would turn a 422 into a 500.
func TestNormalizeEmailRejectsEveryWhitespace(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !unicode.IsSpace(r) {
			continue
		}
		in := "ana" + string(r) + "lopez@example.com"
		if got, err := platform.NormalizeEmail(in); err == nil {
			t.Errorf("NormalizeEmail(%q) = %q, want an error for %U", in, got, r)
		}
	}
}

// TestNewUser proves NewUser lower-cases the email, trims and defaults the
// name, enforces the name's length and reports each invalid field.
func TestNewUser(t *testing.T) {
	tests := []struct {
		name              string
		email, userName   string
		wantEmail, wantNm string
		wantErr           map[string]string // pointer → code; nil for success
	}{
		{"plain", "ana@example.com", "Ana López", "ana@example.com", "Ana López", nil},
		{"email lower-cased", "Ana@Example.COM", "Ana", "ana@example.com", "Ana", nil},
		{"name trimmed", "ana@example.com", "  Ana  ", "ana@example.com", "Ana", nil},
		{"name defaults to the local part", "Ana.Lopez@example.com", "", "ana.lopez@example.com", "ana.lopez", nil},
		{"blank name defaults too", "bea@example.com", "   ", "bea@example.com", "bea", nil},
		{"name of 200 characters", "ana@example.com", strings.Repeat("ñ", 200), "ana@example.com", strings.Repeat("ñ", 200), nil},
		{"name of 201 characters", "ana@example.com", strings.Repeat("n", 201), "", "", map[string]string{"/name": "too_long"}},
		{"name with NUL", "ana@example.com", "An\x00a", "", "", map[string]string{"/name": "invalid_characters"}},
		{"display-name form", "Ana <a@b.c>", "Ana", "", "", map[string]string{"/email": "invalid_email"}},
		{"no email, no name", "", "", "", "", map[string]string{"/email": "invalid_email"}},
		{"bad email, long name", "nope", strings.Repeat("n", 201), "", "", map[string]string{"/email": "invalid_email", "/name": "too_long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := platform.NewUser(tt.email, tt.userName)
			if tt.wantErr != nil {
				wantFields(t, err, tt.wantErr)
				if u != (platform.User{}) {
					t.Errorf("user = %+v on error, want the zero user", u)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewUser(%q, %q): %v", tt.email, tt.userName, err)
			}
			if u.Email != tt.wantEmail || u.Name != tt.wantNm {
				t.Errorf("user = %q <%s>, want %q <%s>", u.Name, u.Email, tt.wantNm, tt.wantEmail)
			}
			if u.ID == uuid.Nil || u.ID.Version() != 7 {
				t.Errorf("id = %v, want a UUIDv7", u.ID)
			}
		})
	}
}

// TestNewClinic proves NewClinic accepts ISO 4217 currencies and IANA zones
// and rejects everything else with a pointer at each invalid field.
func TestNewClinic(t *testing.T) {
	tests := []struct {
		name, clinic, currency, zone string
		wantErr                      map[string]string
	}{
		{"valid", "Clínica Sol", "EUR", "Europe/Madrid", nil},
		{"other currency and zone", "Dental Care", "USD", "America/New_York", nil},
		{"UTC", "Clinic", "GBP", "UTC", nil},
		{"lower-case currency", "Clinic", "eur", "Europe/Madrid", map[string]string{"/currency": "invalid_currency"}},
		{"four letters", "Clinic", "XXXX", "Europe/Madrid", map[string]string{"/currency": "invalid_currency"}},
		{"unknown code", "Clinic", "ZZZ", "Europe/Madrid", map[string]string{"/currency": "invalid_currency"}},
		{"empty currency", "Clinic", "", "Europe/Madrid", map[string]string{"/currency": "invalid_currency"}},
		{"padded currency", "Clinic", " EUR", "Europe/Madrid", map[string]string{"/currency": "invalid_currency"}},
		{"Local zone", "Clinic", "EUR", "Local", map[string]string{"/timezone": "invalid_timezone"}},
		{"empty zone", "Clinic", "EUR", "", map[string]string{"/timezone": "invalid_timezone"}},
		{"unknown zone", "Clinic", "EUR", "Mars/Base", map[string]string{"/timezone": "invalid_timezone"}},
		{"lower-case zone", "Clinic", "EUR", "europe/madrid", map[string]string{"/timezone": "invalid_timezone"}},
		{"path in zone", "Clinic", "EUR", "../../etc/passwd", map[string]string{"/timezone": "invalid_timezone"}},
		{"over-long zone", "Clinic", "EUR", strings.Repeat("A", 65), map[string]string{"/timezone": "invalid_timezone"}},
		{"blank name", "   ", "EUR", "Europe/Madrid", map[string]string{"/name": "required"}},
		{"name of 201", strings.Repeat("c", 201), "EUR", "Europe/Madrid", map[string]string{"/name": "too_long"}},
		{"everything wrong", "", "eur", "Mars/Base", map[string]string{"/name": "required", "/currency": "invalid_currency", "/timezone": "invalid_timezone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := platform.NewClinic(tt.clinic, tt.currency, tt.zone)
			if tt.wantErr != nil {
				wantFields(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("NewClinic: %v", err)
			}
			if c.Name != strings.TrimSpace(tt.clinic) || c.Currency != tt.currency || c.Timezone != tt.zone || c.ID == uuid.Nil {
				t.Errorf("clinic = %+v", c)
			}
		})
	}
}

// TestNewAPIKey proves a key is "aura_"-prefixed, its display prefix is the
// key's start, only its SHA-256 hash is kept, keys are unique, and its name is
// trimmed and limited to 100 characters.
func TestNewAPIKey(t *testing.T) {
	userID := uuid.New()
	k1, s1, err := platform.NewAPIKey(userID, "  laptop  ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s1, platform.KeyPrefix) || platform.KeyPrefix != "aura_" {
		t.Errorf("key %q does not start with aura_", s1)
	}
	if len(s1) < len(platform.KeyPrefix)+40 {
		t.Errorf("key %q is too short to carry 256 bits", s1)
	}
	if len(k1.Prefix) <= len(platform.KeyPrefix) || !strings.HasPrefix(s1, k1.Prefix) || len(k1.Prefix) >= len(s1)/2 {
		t.Errorf("prefix %q is not a short start of key %q", k1.Prefix, s1)
	}
	if !bytes.Equal(k1.SecretHash, platform.HashSecret(s1)) || len(k1.SecretHash) != 32 {
		t.Errorf("SecretHash = %x, want HashSecret(key) = %x", k1.SecretHash, platform.HashSecret(s1))
	}
	if bytes.Contains(k1.SecretHash, []byte(s1[len(k1.Prefix):])) {
		t.Errorf("SecretHash holds the key in clear")
	}
	if k1.UserID != userID || k1.Name != "laptop" || k1.ID == uuid.Nil {
		t.Errorf("key = %+v, want user %v, name laptop, an id", k1, userID)
	}

	k2, s2, err := platform.NewAPIKey(userID, "")
	if err != nil {
		t.Fatalf("unnamed key: %v", err)
	}
	if s1 == s2 || k1.ID == k2.ID || bytes.Equal(k1.SecretHash, k2.SecretHash) {
		t.Errorf("two keys are not distinct: %q / %q", s1, s2)
	}

	if _, _, err := platform.NewAPIKey(userID, strings.Repeat("k", 100)); err != nil {
		t.Errorf("100-character name: %v", err)
	}
	k, s, err := platform.NewAPIKey(userID, strings.Repeat("k", 101))
	wantFields(t, err, map[string]string{"/name": "too_long"})
	if s != "" || k.SecretHash != nil {
		t.Errorf("rejected key returned a secret %q", s)
	}
}

// TestHashSecret proves HashSecret is SHA-256: deterministic, 32 bytes, and
// different for different secrets.
func TestHashSecret(t *testing.T) {
	a, b := platform.HashSecret("aura_a"), platform.HashSecret("aura_b")
	if len(a) != 32 || !bytes.Equal(a, platform.HashSecret("aura_a")) || bytes.Equal(a, b) {
		t.Errorf("HashSecret: %x %x", a, b)
	}
	// SHA-256("abc"), from FIPS 180-2.
	if got := fmt.Sprintf("%x", platform.HashSecret("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashSecret(abc) = %s, not SHA-256", got)
	}
}
