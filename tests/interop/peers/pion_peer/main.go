// A stdio peer protocol peer (docs/INTEROP.md: the protocol and its feature messages, as peer_core.js speaks
// them) on Pion webrtc v3, built offline from Debian's golang-github-pion-webrtc.v3-dev by build.sh. No arguments.
// One JSON object per line on stdin and stdout; diagnostics on stderr. Data channels are detached (Pion's
// callback API reads into a 65,535-byte buffer, too small for 64 KiB messages); loopback candidates are on
// (Pion skips them by default and the tests run in a loopback-only namespace).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v3"
)

const (
	openTimeout = 30 * time.Second
	echoTimeout = 30 * time.Second
	replyGrace  = 30 * time.Second
	sendTimeout = 30 * time.Second
	readBuffer  = 1 << 20
)

var (
	startedAt = time.Now()
	outMu     sync.Mutex
	out       = bufio.NewWriter(os.Stdout)
)

func emit(m map[string]interface{}) {
	line, err := json.Marshal(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pion_peer: cannot encode %v: %v\n", m, err)
		return
	}
	outMu.Lock()
	defer outMu.Unlock()
	out.Write(line)
	out.WriteByte('\n')
	out.Flush()
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pion_peer: "+format+"\n", args...)
}

type message struct {
	data []byte
	text bool
}

// channel is one data channel: opened is closed once it is open (rw set), inbox gets the messages of test
// channels that do not echo.
type channel struct {
	dc     *webrtc.DataChannel
	mu     sync.Mutex
	rw     datachannel.ReadWriteCloser
	opened chan struct{}
	closed chan struct{}
	inbox  chan message
}

func (c *channel) waitOpen(timeout time.Duration) error {
	select {
	case <-c.opened:
		return nil
	case <-c.closed:
		return fmt.Errorf("channel %s closed before it opened", c.dc.Label())
	case <-time.After(timeout):
		return fmt.Errorf("channel %s did not open within %v", c.dc.Label(), timeout)
	}
}

func (c *channel) send(m message) error {
	_, err := c.rw.WriteDataChannel(m.data, m.text)
	return err
}

type peer struct {
	role  string
	mu    sync.Mutex
	pc    *webrtc.PeerConnection
	api   *webrtc.API
	ctl   sync.Once
	tests map[string]*channel
}

// watch detaches the channel once open and runs onMessage for every message read; onClose when it ends.
func watch(dc *webrtc.DataChannel, onMessage func(c *channel, m message), onOpen func(c *channel), onClose func()) *channel {
	c := &channel{dc: dc, opened: make(chan struct{}), closed: make(chan struct{})}
	dc.OnOpen(func() {
		rw, err := dc.Detach()
		if err != nil {
			logf("detach %s: %v", dc.Label(), err)
			return
		}
		c.mu.Lock()
		c.rw = rw
		c.mu.Unlock()
		close(c.opened)
		if onOpen != nil {
			onOpen(c)
		}
		go func() {
			buf := make([]byte, readBuffer)
			for {
				n, text, err := rw.ReadDataChannel(buf)
				if err != nil {
					if err != io.EOF {
						logf("read %s: %v", dc.Label(), err)
					}
					close(c.closed)
					if onClose != nil {
						onClose()
					}
					return
				}
				data := make([]byte, n)
				copy(data, buf[:n])
				if onMessage != nil {
					onMessage(c, message{data, text})
				}
			}
		}()
	})
	return c
}

func echoBack(c *channel, m message) {
	if err := c.send(m); err != nil {
		logf("echo on %s: %v", c.dc.Label(), err)
	}
}

func optional(v *uint16) interface{} {
	if v == nil {
		return nil
	}
	return *v
}

func (p *peer) addTest(dc *webrtc.DataChannel, origin string, echo bool) {
	var c *channel
	onMessage := echoBack
	if !echo {
		onMessage = func(c *channel, m message) { c.inbox <- m }
	}
	c = watch(dc, onMessage, func(c *channel) {
		emit(map[string]interface{}{"type": "channel-open", "label": dc.Label(), "origin": origin,
			"ordered": dc.Ordered(), "maxRetransmits": optional(dc.MaxRetransmits()),
			"maxPacketLifeTime": optional(dc.MaxPacketLifeTime()), "protocol": dc.Protocol(),
			"negotiated": dc.Negotiated(), "id": optional(dc.ID())})
	}, func() { emit(map[string]interface{}{"type": "channel-closed", "label": dc.Label()}) })
	c.inbox = make(chan message, 4096)
	p.mu.Lock()
	p.tests[dc.Label()] = c
	p.mu.Unlock()
}

func (p *peer) reportCtl() {
	p.ctl.Do(func() {
		emit(map[string]interface{}{"type": "open", "label": "ctl", "t_ms": time.Since(startedAt).Milliseconds()})
	})
}

func (p *peer) serveRemote(dc *webrtc.DataChannel) {
	label := dc.Label()
	switch {
	case label == "ctl":
		watch(dc, nil, func(*channel) { p.reportCtl() }, nil)
	case strings.HasPrefix(label, "echo"):
		watch(dc, echoBack, nil, nil)
	case strings.HasPrefix(label, "t-"):
		p.addTest(dc, "remote", true)
	case strings.HasPrefix(label, "sink"):
		var bytes, messages int
		var first, last time.Time
		watch(dc, func(c *channel, m message) {
			if m.text {
				if string(m.data) == "fin" {
					secs := 0.0
					if messages > 0 {
						secs = last.Sub(first).Seconds()
					}
					reply, _ := json.Marshal(map[string]interface{}{"bytes": bytes, "messages": messages, "recv_seconds": secs})
					if err := c.send(message{reply, true}); err != nil {
						logf("sink reply: %v", err)
					}
				}
				return
			}
			t := time.Now()
			if messages == 0 {
				first = t
			}
			last = t
			bytes += len(m.data)
			messages++
		}, nil, nil)
	default:
		watch(dc, nil, nil, nil)
	}
}

func (p *peer) createConnection() error {
	if p.pc != nil {
		return fmt.Errorf("the peer connection exists already")
	}
	var se webrtc.SettingEngine
	// Pion's log (PION_LOG_DEBUG=all etc.) goes to stderr: stdout is the protocol's.
	logs := logging.NewDefaultLoggerFactory()
	logs.Writer = os.Stderr
	se.LoggerFactory = logs
	se.DetachDataChannels()
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	p.api = webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	p.pc = pc
	pc.OnDataChannel(p.serveRemote)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		emit(map[string]interface{}{"type": "connection", "state": s.String()})
	})
	return nil
}

func (p *peer) gathered() string {
	done := webrtc.GatheringCompletePromise(p.pc)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		logf("gathering did not complete within 10 s")
	}
	return p.pc.LocalDescription().SDP
}

// The same pattern as peer_core.js: message seq of size bytes.
func pattern(seq, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*31 + seq*7 + 1)
	}
	return b
}

func makeMessage(k int, binary bool, size int) message {
	if !binary {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(97 + (i+k)%26)
		}
		return message{b, true}
	}
	return message{pattern(k, size), false}
}

func key(m message) string {
	h := fnv.New32a()
	h.Write(m.data)
	kind := "binary"
	if m.text {
		kind = "text"
	}
	return fmt.Sprintf("%s/%d/%x", kind, len(m.data), h.Sum32())
}

func idString(id interface{}) string {
	if s, ok := id.(string); ok {
		return s
	}
	b, _ := json.Marshal(id)
	return string(b)
}

func receive(c *channel, timeout time.Duration) (message, bool) {
	select {
	case m := <-c.inbox:
		return m, true
	case <-time.After(timeout):
		return message{}, false
	}
}

func (p *peer) localChannel(label string, init *webrtc.DataChannelInit) (*channel, error) {
	dc, err := p.pc.CreateDataChannel(label, init)
	if err != nil {
		return nil, err
	}
	c := watch(dc, func(c *channel, m message) { c.inbox <- m }, nil, nil)
	c.inbox = make(chan message, 4096)
	return c, c.waitOpen(openTimeout)
}

type request struct {
	Type          string                 `json:"type"`
	Role          string                 `json:"role"`
	SDP           string                 `json:"sdp"`
	Candidate     *string                `json:"candidate"`
	SDPMid        *string                `json:"sdpMid"`
	SDPMLineIndex *uint16                `json:"sdpMLineIndex"`
	ID            interface{}            `json:"id"`
	Count         int                    `json:"count"`
	Size          int                    `json:"size"`
	Seconds       float64                `json:"seconds"`
	High          int                    `json:"high"`
	Low           int                    `json:"low"`
	Label         string                 `json:"label"`
	Echo          bool                   `json:"echo"`
	Options       map[string]interface{} `json:"options"`
	Messages      []struct {
		Binary bool `json:"binary"`
		Size   int  `json:"size"`
	} `json:"messages"`
}

func (p *peer) echoTest(r *request) error {
	c, err := p.localChannel("echo-"+idString(r.ID), nil)
	if err != nil {
		return err
	}
	rtts := []float64{}
	started := time.Now()
	for seq := 0; seq < r.Count; seq++ {
		m := message{pattern(seq, r.Size), false}
		sent := time.Now()
		if err := c.send(m); err != nil {
			return err
		}
		back, ok := receive(c, echoTimeout-time.Since(started))
		if !ok {
			return fmt.Errorf("echo %v: no echo of message %d within %v", r.ID, seq, echoTimeout)
		}
		rtts = append(rtts, float64(time.Since(sent).Microseconds())/1000)
		if key(back) != key(m) {
			return fmt.Errorf("echo %v: message %d came back altered", r.ID, seq)
		}
	}
	c.dc.Close()
	emit(map[string]interface{}{"type": "result", "test": "echo", "id": r.ID, "size": r.Size, "count": r.Count, "rtt_ms": rtts})
	return nil
}

func (p *peer) throughputTest(r *request) error {
	if r.Size <= 0 || r.Low > r.High {
		return fmt.Errorf("throughput: size must be positive and low <= high")
	}
	c, err := p.localChannel("sink-"+idString(r.ID), nil)
	if err != nil {
		return err
	}
	low := make(chan struct{}, 1)
	c.dc.SetBufferedAmountLowThreshold(uint64(r.Low))
	c.dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	payload := pattern(0, r.Size)
	var bytes, messages, waits int
	start := time.Now()
	end := start.Add(time.Duration(r.Seconds * float64(time.Second)))
	for time.Now().Before(end) {
		for c.dc.BufferedAmount() < uint64(r.High) {
			if err := c.send(message{payload, false}); err != nil {
				return err
			}
			bytes += r.Size
			messages++
		}
		waits++
		for c.dc.BufferedAmount() > uint64(r.Low) {
			select {
			case <-low:
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	sendEnd := time.Now()
	if err := c.send(message{[]byte("fin"), true}); err != nil {
		return err
	}
	var reply []byte
	for reply == nil {
		m, ok := receive(c, replyGrace-time.Since(sendEnd))
		if !ok {
			return fmt.Errorf("throughput %v: no reply to fin within %v", r.ID, replyGrace)
		}
		if m.text {
			reply = m.data
		}
	}
	seconds := time.Since(start).Seconds()
	c.dc.Close()
	var remote interface{}
	if err := json.Unmarshal(reply, &remote); err != nil {
		return fmt.Errorf("throughput %v: the sink's reply is not JSON", r.ID)
	}
	emit(map[string]interface{}{"type": "result", "test": "throughput", "id": r.ID, "size": r.Size, "bytes": bytes,
		"messages": messages, "seconds": seconds, "send_seconds": sendEnd.Sub(start).Seconds(),
		"mbit_per_s": float64(bytes) * 8 / seconds / 1e6, "waits": waits, "remote": remote})
	return nil
}

func (p *peer) sendTest(r *request) error {
	p.mu.Lock()
	c := p.tests[r.Label]
	p.mu.Unlock()
	if c == nil {
		return fmt.Errorf("send: no local test channel %s", r.Label)
	}
	if err := c.waitOpen(openTimeout); err != nil {
		return err
	}
	sent := []string{}
	started := time.Now()
	for k, spec := range r.Messages {
		m := makeMessage(k, spec.Binary, spec.Size)
		sent = append(sent, key(m))
		if err := c.send(m); err != nil {
			return err
		}
	}
	got := []string{}
	for len(got) < len(sent) {
		m, ok := receive(c, sendTimeout-time.Since(started))
		if !ok {
			return fmt.Errorf("send %s: %d of %d messages came back within %v", r.Label, len(got), len(sent), sendTimeout)
		}
		got = append(got, key(m))
	}
	if !c.dc.Ordered() {
		count := map[string]int{}
		for _, k := range sent {
			count[k]++
		}
		for _, k := range got {
			count[k]--
		}
		for k, n := range count {
			if n != 0 {
				return fmt.Errorf("send %s: unordered messages differ (%s)", r.Label, k)
			}
		}
	} else {
		for i := range sent {
			if sent[i] != got[i] {
				return fmt.Errorf("send %s: message %d sent as %s came back as %s", r.Label, i, sent[i], got[i])
			}
		}
	}
	emit(map[string]interface{}{"type": "result", "test": "send", "label": r.Label, "count": len(sent),
		"ms": float64(time.Since(started).Microseconds()) / 1000})
	return nil
}

func channelInit(o map[string]interface{}) *webrtc.DataChannelInit {
	init := &webrtc.DataChannelInit{}
	u16 := func(name string) *uint16 {
		if v, ok := o[name].(float64); ok {
			n := uint16(v)
			return &n
		}
		return nil
	}
	if v, ok := o["ordered"].(bool); ok {
		init.Ordered = &v
	}
	if v, ok := o["negotiated"].(bool); ok {
		init.Negotiated = &v
	}
	if v, ok := o["protocol"].(string); ok {
		init.Protocol = &v
	}
	init.MaxRetransmits = u16("maxRetransmits")
	init.MaxPacketLifeTime = u16("maxPacketLifeTime")
	init.ID = u16("id")
	return init
}

func (p *peer) handle(r *request) error {
	needPC := func() error {
		if p.pc == nil {
			return fmt.Errorf("%s before the peer connection exists", r.Type)
		}
		return nil
	}
	needRole := func(want string) error {
		if p.role != want {
			return fmt.Errorf("%s is for the %s, this peer is %q", r.Type, want, p.role)
		}
		return nil
	}
	switch r.Type {
	case "init":
		if r.Role != "offerer" && r.Role != "answerer" {
			return fmt.Errorf("role must be offerer or answerer, not %s", r.Role)
		}
		p.role = r.Role
		emit(map[string]interface{}{"type": "ready", "role": p.role, "name": "Pion webrtc", "version": "3 (Debian)"})
	case "start":
		if err := needRole("offerer"); err != nil {
			return err
		}
		if err := p.createConnection(); err != nil {
			return err
		}
		ctl, err := p.pc.CreateDataChannel("ctl", nil)
		if err != nil {
			return err
		}
		watch(ctl, nil, func(*channel) { p.reportCtl() }, nil)
		offer, err := p.pc.CreateOffer(nil)
		if err != nil {
			return err
		}
		if err := p.pc.SetLocalDescription(offer); err != nil {
			return err
		}
		emit(map[string]interface{}{"type": "offer", "sdp": p.gathered()})
	case "offer":
		if err := needRole("answerer"); err != nil {
			return err
		}
		if err := p.createConnection(); err != nil {
			return err
		}
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: r.SDP}); err != nil {
			return err
		}
		answer, err := p.pc.CreateAnswer(nil)
		if err != nil {
			return err
		}
		if err := p.pc.SetLocalDescription(answer); err != nil {
			return err
		}
		emit(map[string]interface{}{"type": "answer", "sdp": p.gathered()})
	case "answer":
		if err := needRole("offerer"); err != nil {
			return err
		}
		if err := needPC(); err != nil {
			return err
		}
		return p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: r.SDP})
	case "candidate":
		if err := needPC(); err != nil {
			return err
		}
		c := webrtc.ICECandidateInit{SDPMid: r.SDPMid, SDPMLineIndex: r.SDPMLineIndex}
		if r.Candidate != nil {
			c.Candidate = *r.Candidate
		}
		return p.pc.AddICECandidate(c)
	case "echo":
		if err := needPC(); err != nil {
			return err
		}
		return p.echoTest(r)
	case "throughput":
		if err := needPC(); err != nil {
			return err
		}
		return p.throughputTest(r)
	case "channel":
		if err := needPC(); err != nil {
			return err
		}
		if !strings.HasPrefix(r.Label, "t-") {
			return fmt.Errorf("channel: the label must start with t-")
		}
		p.mu.Lock()
		_, exists := p.tests[r.Label]
		p.mu.Unlock()
		if exists {
			return fmt.Errorf("channel: %s exists already", r.Label)
		}
		dc, err := p.pc.CreateDataChannel(r.Label, channelInit(r.Options))
		if err != nil {
			return err
		}
		p.addTest(dc, "local", r.Echo)
	case "send":
		if err := needPC(); err != nil {
			return err
		}
		return p.sendTest(r)
	case "close-channel":
		p.mu.Lock()
		c := p.tests[r.Label]
		p.mu.Unlock()
		if c == nil {
			return fmt.Errorf("close-channel: no test channel %s", r.Label)
		}
		return c.dc.Close()
	case "close":
		if p.pc != nil {
			p.pc.Close()
		}
		emit(map[string]interface{}{"type": "closed"})
		os.Exit(0)
	default:
		return fmt.Errorf("unknown message type %s", r.Type)
	}
	return nil
}

func main() {
	if len(os.Args) > 1 {
		logf("unknown argument %s", os.Args[1])
		os.Exit(2)
	}
	p := &peer{tests: map[string]*channel{}}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<16), 1<<22)
	// Signaling messages are handled in order; the test messages run concurrently, as in peer_core.js.
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		r := &request{}
		if err := json.Unmarshal([]byte(line), r); err != nil {
			emit(map[string]interface{}{"type": "error", "message": "not a JSON object: " + line})
			continue
		}
		run := func() {
			if err := p.handle(r); err != nil {
				e := map[string]interface{}{"type": "error", "message": err.Error()}
				if r.Label != "" {
					e["label"] = r.Label
				}
				emit(e)
			}
		}
		switch r.Type {
		case "echo", "throughput", "send":
			go run()
		default:
			run()
		}
	}
	logf("stdin closed, exiting")
}
