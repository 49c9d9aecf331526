package relay_test

import (
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicegate/voicegate/internal/govern"
	"github.com/voicegate/voicegate/internal/meter"
	"github.com/voicegate/voicegate/internal/relay"
	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/memory"
)

// A server wires one Relay and calls Serve from its /v1/realtime handler
// after authenticating the token and checking the origin.
func Example() {
	reg := prometheus.NewRegistry()
	r := &relay.Relay{
		Upstream: "https://api.openai.com/v1",
		APIKey:   relay.Secret(os.Getenv("OPENAI_API_KEY")),
		Governor: &govern.Governor{
			Store:   memory.New(),
			Prices:  meter.DefaultTable().Merge(meter.Table{"my-model": {TextIn: meter.USD(1)}}),
			Metrics: govern.NewMetrics(reg),
		},
		Logger:   slog.Default(),
		Metrics:  relay.NewMetrics(reg),
		Instance: "gw-1",
	}
	http.HandleFunc("GET /v1/realtime", func(w http.ResponseWriter, req *http.Request) {
		var sess *store.Session // looked up from the authenticated token
		if sess == nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.Serve(w, req, relay.Conn{
			Session:  sess,
			Beta:     req.Header.Get("OpenAI-Beta") == "realtime=v1",
			Query:    req.URL.Query(),
			SafetyID: "sha256-of-user",
		})
	})
}
