# Measures what WebRTCPeerConnection.poll() costs per frame with 1, 10 and 100 connected, idle connections (each
# with one open negotiated channel and nothing to send): the time to poll all N connections of one side, averaged
# over 300 frames. A measurement, not a test (no pass/fail on time); see docs/GODOT.md for the numbers.
#   tests/interop/peers/netns.sh tests/godot/run.sh build/release /usr/bin/godot3-server poll_cost.gd
extends SceneTree

const Common = preload("res://common.gd")
const FRAMES = 300
var t

func _initialize():
	t = Common.new(self)
	_run()

func _open(channels):
	for ch in channels:
		if ch.get_ready_state() != WebRTCDataChannel.STATE_OPEN:
			return false
	return true

func _run():
	yield(self, "idle_frame")
	print(t.call_native("rtcpeer_version"))
	for n in [1, 10, 100]:
		var side_a = []
		var side_b = []
		var channels = []
		for i in range(n):
			var a = WebRTCPeerConnection.new()
			var b = WebRTCPeerConnection.new()
			a.initialize(Common.CONFIG)
			b.initialize(Common.CONFIG)
			channels.append(a.create_data_channel("c", {"negotiated": true, "id": 1}))
			channels.append(b.create_data_channel("c", {"negotiated": true, "id": 1}))
			t.wire(a, b)
			a.create_offer()
			side_a.append(a)
			side_b.append(b)
		t.pollers = side_a + side_b
		yield(t.until("%d connections open" % n, self, "_open", [channels]), "completed")
		t.pollers = []
		var total = 0
		var worst = 0
		for f in range(FRAMES):
			yield(self, "idle_frame")
			var t0 = OS.get_ticks_usec()
			for pc in side_a:
				pc.poll()
			var dt = OS.get_ticks_usec() - t0
			total += dt
			worst = max(worst, dt)
			for pc in side_b:
				pc.poll()
		print("poll cost: %3d idle connections: %7.1f us per frame (%.2f us per connection), worst frame %d us" % [n, float(total) / FRAMES, float(total) / FRAMES / n, worst])
		t.check(_open(channels), "%d connections still open after %d frames" % [n, FRAMES])
		for i in range(n):
			t.unwire(side_a[i], side_b[i])
			side_a[i].close()
			side_b[i].close()
	quit(t.summary())
