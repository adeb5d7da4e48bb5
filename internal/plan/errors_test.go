package plan

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestBadInput(t *testing.T) {
	basic, err := os.ReadFile(fixturesDir + "/terraform-json/basic_plan.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		in    string
		err   error
		wants []string
	}{
		{"fail/empty", "", ErrEmpty, []string{"no JSON document"}},
		{"fail/whitespace", " \n\t ", ErrEmpty, nil},
		{"fail/truncated", string(basic[:len(basic)/2]), ErrSyntax, []string{"ends at byte offset", "truncated"}},
		{"fail/invalid-json", `{"format_version": "1.2", "resource_changes": [}`, ErrSyntax, []string{"byte offset 47"}},
		{"fail/wrapper-text", "[command]/usr/bin/terraform show -json\n{}", ErrSyntax, []string{"byte offset 1", "terraform_wrapper"}},
		{"fail/binary-file", "\x7fELF\x02\x01\x01\x00", ErrSyntax, []string{"binary file", "--plan-file"}},
		{"fail/array", `[{"resource_changes": []}]`, ErrNotPlan, []string{"JSON array"}},
		{"fail/string", `"plan"`, ErrNotPlan, []string{"JSON string"}},
		{"fail/other-object", `{"name": "not a plan", "items": [1, 2]}`, ErrNotPlan, []string{"none of the sections"}},
		{"fail/state", `{"format_version": "1.0", "terraform_version": "1.9.0", "values": {"root_module": {}}}`, ErrNotPlan, []string{"Terraform state"}},
		{"fail/future-format", `{"format_version": "2.0", "resource_changes": []}`, ErrUnsupported, []string{"2.0", "upgrade stepgate"}},
		{"fail/non-numeric-format", `{"format_version": "latest", "resource_changes": []}`, ErrUnsupported, []string{`"latest"`}},
		{"fail/format-not-string", `{"format_version": 1.2, "resource_changes": []}`, ErrInvalid, []string{"format_version is a JSON number"}},
		{"fail/trailing-document", `{"format_version": "1.2"}{"format_version": "1.2"}`, ErrSyntax, []string{"more data follows", "byte offset"}},
		{"fail/trailing-garbage", `{"format_version": "1.2"} xyz`, ErrSyntax, nil},
		{"fail/duplicate-key", `{"format_version": "1.2", "errored": false, "errored": true}`, ErrSyntax, []string{"duplicate", "/errored"}},
		{"fail/changes-not-array", `{"format_version": "1.2", "resource_changes": {}}`, ErrInvalid, []string{"resource_changes is a JSON object, want an array"}},
		{"fail/change-not-object", `{"format_version": "1.2", "resource_changes": [42]}`, ErrInvalid, []string{"resource_changes[0]", "JSON number"}},
		{"fail/no-address", `{"format_version": "1.2", "resource_changes": [{"change": {"actions": ["create"]}}]}`, ErrInvalid, []string{"resource_changes[0]: has no address"}},
		{"fail/no-change", `{"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a"}]}`, ErrInvalid, []string{"a.b has no change"}},
		{"fail/bad-action", `{"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a", "change": {"actions": ["create", "update"]}}]}`, ErrInvalid, []string{`unknown actions ["create" "update"]`}},
		{"fail/bad-mode", `{"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a", "mode": "ghost", "change": {"actions": ["create"]}}]}`, ErrInvalid, []string{`unknown mode "ghost"`}},
		{"fail/wrong-field-type", `{"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a", "change": {"actions": "create"}}]}`, ErrInvalid, []string{"resource_changes[0]"}},
		{"fail/errored-not-bool", `{"format_version": "1.2", "errored": "yes"}`, ErrInvalid, []string{"errored is a JSON string"}},
		{"fail/pulumi-bad-op", `{"steps": [{"op": "explode", "urn": "urn:pulumi:s::p::t:m:T::n"}]}`, ErrInvalid, []string{`unknown op "explode"`}},
		{"fail/both-formats", `{"steps": [], "resource_changes": []}`, ErrNotPlan, []string{"both Terraform"}},
		{"fail/invalid-utf8", "{\"format_version\": \"1.2\", \"x\": \"\xff\"}", ErrSyntax, nil},
		// Two changes at one address: the review page would show one and
		// hide the other.
		{"fail/duplicate-address", `{"format_version": "1.2", "resource_changes": [
			{"address": "aws_iam_role_policy.p", "type": "aws_iam_role_policy", "change": {"actions": ["no-op"], "before": {}, "after": {}}},
			{"address": "aws_iam_role_policy.p", "type": "aws_iam_role_policy", "change": {"actions": ["update"], "before": {"policy": "a"}, "after": {"policy": "*"}}}]}`,
			ErrInvalid, []string{"resource_changes[1]", "aws_iam_role_policy.p is changed twice", "resource_changes[0]"}},
		{"fail/duplicate-deposed", `{"format_version": "1.2", "resource_changes": [
			{"address": "a.b", "type": "a", "deposed": "00000001", "change": {"actions": ["delete"]}},
			{"address": "a.b", "type": "a", "deposed": "00000001", "change": {"actions": ["delete"]}}]}`,
			ErrInvalid, []string{"a.b (deposed object 00000001) is changed twice"}},
		{"fail/pulumi-duplicate-urn", `{"steps": [
			{"op": "same", "urn": "urn:pulumi:s::p::t:m:T::n"},
			{"op": "delete", "urn": "urn:pulumi:s::p::t:m:T::n"}]}`,
			ErrInvalid, []string{"steps[1]", "changed twice"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Read(strings.NewReader(tt.in), Options{})
			if err == nil {
				t.Fatalf("Read = %+v, want an error", p)
			}
			if !errors.Is(err, tt.err) || !IsBadInput(err) {
				t.Errorf("Read error = %v, want %v", err, tt.err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Read error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A deposed object (create_before_destroy) has the address of the current
// one: that is one change each, not a duplicate.
func TestDeposedIsNotADuplicate(t *testing.T) {
	in := `{"format_version": "1.2", "resource_changes": [
		{"address": "a.b", "type": "a", "change": {"actions": ["create"]}},
		{"address": "a.b", "type": "a", "deposed": "00000001", "change": {"actions": ["delete"]}}]}`
	p, err := Read(strings.NewReader(in), Options{})
	if err != nil || len(p.Changes) != 2 {
		t.Fatalf("Read = %+v, %v; want two changes", p, err)
	}
}

func TestSizeCap(t *testing.T) {
	doc := `{"format_version": "1.2", "resource_changes": [], "configuration": {"x": "` + strings.Repeat("a", 4096) + `"}}`
	if _, err := Read(strings.NewReader(doc), Options{MaxBytes: 1024}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Read over the cap: error = %v, want ErrTooLarge", err)
	}
	if _, err := Read(strings.NewReader(doc), Options{MaxBytes: int64(len(doc))}); err != nil {
		t.Errorf("Read at exactly the cap: %v", err)
	}
}

func utf16Bytes(s string, bigEndian, bom bool) []byte {
	units := utf16.Encode([]rune(s))
	var b bytes.Buffer
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	for _, u := range units {
		if bigEndian {
			b.Write([]byte{byte(u >> 8), byte(u)})
		} else {
			b.Write([]byte{byte(u), byte(u >> 8)})
		}
	}
	return b.Bytes()
}

func TestEncodings(t *testing.T) {
	raw, err := os.ReadFile(fixturesDir + "/regula/ingress_anywhere_ssh_infra.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Read(bytes.NewReader(raw), Options{})
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("testdata/utf16le_bom_powershell.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"ok/utf8-bom", append([]byte{0xEF, 0xBB, 0xBF}, raw...)},
		{"ok/utf16le-bom", utf16Bytes(string(raw), false, true)},
		{"ok/utf16be-bom", utf16Bytes(string(raw), true, true)},
		{"ok/utf16le-no-bom", utf16Bytes(string(raw), false, false)},
		{"ok/utf16le-bom-file", committed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(bytes.NewReader(tt.in), Options{})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if len(got.Changes) != len(want.Changes) || got.FormatVersion != want.FormatVersion {
				t.Errorf("Read gave %d changes, format %s; want %d, %s", len(got.Changes), got.FormatVersion, len(want.Changes), want.FormatVersion)
			}
			if got.Size != int64(len(tt.in)) {
				t.Errorf("Size = %d, want the %d bytes of the file as given", got.Size, len(tt.in))
			}
		})
	}
}

func TestVisitError(t *testing.T) {
	stop := errors.New("stop here")
	f, err := os.Open(fixturesDir + "/regula/ingress_anywhere_ssh_infra.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Decode(f, Options{}, func(*Change) error { return stop })
	if err != stop {
		t.Errorf("Decode error = %v, want the visit function's error as is", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range fixtureFiles(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 16<<10 {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"steps":[{"op":"replace","urn":"urn:pulumi:a::b::c:d:E::f"}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Decode(bytes.NewReader(in), Options{MaxBytes: 1 << 20}, func(c *Change) error {
			if c.Action == ActionNoOp {
				t.Errorf("no-op change %q passed on", c.Address)
			}
			return nil
		})
		if err != nil {
			if !IsBadInput(err) {
				t.Errorf("Decode error %v is not a bad-input error", err)
			}
			return
		}
		if p.Total() < p.ChangeCount() || p.Size != int64(len(in)) {
			t.Errorf("inconsistent plan: total %d, changes %d, size %d of %d", p.Total(), p.ChangeCount(), p.Size, len(in))
		}
	})
}
