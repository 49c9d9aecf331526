package simrtc

import (
	"fmt"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// pcmuCodec is the only codec the simulator answers with: a pure-Go
// simulator cannot encode or decode Opus, and every browser offers PCMU.
var pcmuCodec = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType:  webrtc.MimeTypePCMU,
		ClockRate: 8000,
		Channels:  1,
	},
	PayloadType: 0,
}

// LoopbackOnly restricts se to host candidates on loopback interfaces over
// UDP/IPv4, with mDNS disabled: the simulator's calls never touch another
// network, and gathering completes at once. It is the default of New, and
// test clients use it too.
func LoopbackOnly(se *webrtc.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(isLoopbackInterface)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
}

func isLoopbackInterface(name string) bool {
	iface, err := net.InterfaceByName(name)
	return err == nil && iface.Flags&net.FlagLoopback != 0
}

// newAPI builds the pion API of the simulator's calls: PCMU audio only, no
// interceptors (no NACK, no RTCP reports: loopback loses nothing and the
// simulator must stay cheap per call), and se configured by LoopbackOnly
// then by configure.
func newAPI(configure func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(pcmuCodec, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register pcmu: %w", err)
	}
	var se webrtc.SettingEngine
	LoopbackOnly(&se)
	if configure != nil {
		configure(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)), nil
}
