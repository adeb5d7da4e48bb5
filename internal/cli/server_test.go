package cli

import (
	"context"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// testServer is the real server as serve builds it (app.NewServer: the
// gate, the API, the pages, the background loops) over a SQLite store,
// on a loopback port named localhost, as serve names it.
type testServer struct {
	*app.Server
	URL string
}

// startTestServer starts the server; configure, when given, changes its
// options (URL is the server's public URL) before it is built.
func startTestServer(t *testing.T, configure func(o *app.Options, url string)) *testServer {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the server's Close
	master, err := keys.NewMaster(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	url := "http://localhost:" + strconv.Itoa(hs.Listener.Addr().(*net.TCPAddr).Port)
	o := app.Options{
		Server: config.Server{PublicURL: url},
		Policy: policy.DefaultConfig(), MaxPlan: 1 << 20,
		Store: st, Master: master,
	}
	if configure != nil {
		configure(&o, url)
	}
	s, err := app.NewServer(ctx, o)
	if err != nil {
		t.Fatalf("building the server: %v", err)
	}
	hs.Config.Handler = s.Handler()
	s.Start(ctx)
	hs.Start()
	t.Cleanup(func() {
		s.Drain()
		hs.Close()
		if err := s.Close(); err != nil {
			t.Errorf("closing the server: %v", err)
		}
	})
	return &testServer{Server: s, URL: url}
}
