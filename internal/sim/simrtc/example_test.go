package simrtc_test

import (
	"log"
	"net/http"

	"github.com/voicegate/voicegate/internal/sim"
	"github.com/voicegate/voicegate/internal/sim/simrtc"
)

// A simulator that answers WebRTC calls: browsers POST their SDP offer (with
// PCMU audio and an "oai-events" data channel) to /v1/realtime/calls.
func ExampleNew() {
	srv := sim.New(sim.Options{APIKeys: []string{"sk-local-test"}})
	srv.Calls = simrtc.New(srv)
	log.Fatal(http.ListenAndServe("127.0.0.1:8090", srv.Handler()))
}
