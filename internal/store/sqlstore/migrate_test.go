package sqlstore

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestReadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tt := range []struct {
		name    string
		fs      fstest.MapFS
		want    []Migration
		wantErr bool
	}{
		{
			name: "ok/in-number-order",
			fs: fstest.MapFS{
				"m/0010_later.sql": file("B"),
				"m/0002_first.sql": file("A"),
				"m/README.md":      file("not a migration"),
			},
			want: []Migration{{2, "0002_first.sql", "A"}, {10, "0010_later.sql", "B"}},
		},
		{name: "ok/none", fs: fstest.MapFS{"m/README.md": file("")}},
		{name: "fail/no-number", fs: fstest.MapFS{"m/init.sql": file("A")}, wantErr: true},
		{name: "fail/zero", fs: fstest.MapFS{"m/0000_init.sql": file("A")}, wantErr: true},
		{name: "fail/same-number", fs: fstest.MapFS{"m/0001_a.sql": file("A"), "m/1_b.sql": file("B")}, wantErr: true},
		{name: "fail/no-directory", fs: fstest.MapFS{}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadMigrations(tt.fs, "m")
			if (err != nil) != tt.wantErr {
				t.Fatalf("ReadMigrations() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadMigrations() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
