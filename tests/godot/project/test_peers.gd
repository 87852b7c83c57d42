# Two WebRTCPeerConnections wired directly in one script, written against Godot's documented WebRTC API only:
# in-band and negotiated channels with every reliability option, text/binary/empty packets, was_string_packet,
# close from either side, initialize() again after close(), and no native object left once GDScript drops them.
extends SceneTree

const Common = preload("res://common.gd")
var t

func _initialize():
	t = Common.new(self)
	_run()

func _run():
	yield(self, "idle_frame")
	_test_plugin_loaded()
	yield(_test_channels_and_packets(), "completed")
	yield(_test_close_and_reinitialize(), "completed")
	yield(_test_dropped_objects_are_freed(), "completed")
	# Counted here, once the test function's stack (and the temporaries GDScript keeps there) is gone.
	yield(t.frames(1), "completed")
	t.check(t.live_objects() == [0, 0], "dropping the last references frees everything: %s" % [t.live_objects()])
	_test_invalid_options()
	yield(_test_channel_outlives_connection(), "completed")
	yield(t.frames(2), "completed")
	var live = t.live_objects()
	t.check(live == [0, 0], "no native object left at the end (peer connections, channels): %s" % [live])
	quit(t.summary())

func _test_plugin_loaded():
	print("plugin loaded")
	var version = str(t.call_native("rtcpeer_version"))
	print("  ", version)
	t.check(version.begins_with("rtcpeer "), "rtcpeer_version names rtcpeer: " + version)
	var pc = WebRTCPeerConnection.new()
	t.check(pc.get_connection_state() == WebRTCPeerConnection.STATE_NEW, "a new connection is STATE_NEW")
	t.check(pc.has_method("rtcpeer_version") and pc.call("rtcpeer_version") == version,
			"the connection object carries rtcpeer's script")
	t.check(ResourceLoader.load("res://webrtc/webrtc.gdnlib") is GDNativeLibrary, "webrtc.gdnlib loads too")

# label -> [options, expected ordered, expected lifetime, expected retransmits, expected protocol]
const IN_BAND = {
	"reliable": [{}, true, 65535, 65535, ""],
	"unordered": [{"ordered": false}, false, 65535, 65535, ""],
	"no-retransmits": [{"ordered": false, "maxRetransmits": 0}, false, 65535, 0, ""],
	"lifetime": [{"maxPacketLifeTime": 500}, true, 500, 65535, ""],
	"protocol": [{"protocol": "chat-v1", "maxRetransmits": 3}, true, 65535, 3, "chat-v1"],
}

var received = {}

func _on_channel(channel):
	received[channel.get_label()] = channel

func _all_open(channels):
	for ch in channels:
		if ch.get_ready_state() != WebRTCDataChannel.STATE_OPEN:
			return false
	return true

func _has_packets(channel, n):
	return channel.get_available_packet_count() >= n

func _is_state(channel, state):
	return channel.get_ready_state() == state

func _pc_state_is_not(pc, state):
	return pc.get_connection_state() != state

func _pc_state_is(pc, state):
	return pc.get_connection_state() == state

func _labels_received(n):
	return received.size() >= n

func _connect_pair(a, b):
	t.wire(a, b)
	t.pollers = [a, b]
	t.check(a.create_offer() == OK, "create_offer")

func _test_channels_and_packets():
	print("channels and packets")
	var a = WebRTCPeerConnection.new()
	var b = WebRTCPeerConnection.new()
	t.check(a.initialize(Common.CONFIG) == OK, "initialize a")
	t.check(b.initialize(Common.CONFIG) == OK, "initialize b")
	b.connect("data_channel_received", self, "_on_channel")
	var mine = {}
	for label in IN_BAND:
		mine[label] = a.create_data_channel(label, IN_BAND[label][0])
		t.check(mine[label] != null, "create_data_channel(%s)" % label)
	var neg_a = a.create_data_channel("negotiated", {"negotiated": true, "id": 7, "ordered": false})
	var neg_b = b.create_data_channel("negotiated", {"negotiated": true, "id": 7, "ordered": false})
	t.check(neg_a != null and neg_b != null, "negotiated channels created on both sides")
	t.check(neg_a.get_ready_state() == WebRTCDataChannel.STATE_CONNECTING, "a new channel is STATE_CONNECTING")
	_connect_pair(a, b)
	yield(t.until("all in-band channels received", self, "_labels_received", [IN_BAND.size()]), "completed")
	var all = mine.values() + received.values() + [neg_a, neg_b]
	yield(t.until("every channel open", self, "_all_open", [all]), "completed")
	t.check(a.get_connection_state() == WebRTCPeerConnection.STATE_CONNECTED, "a is STATE_CONNECTED")
	t.check(b.get_connection_state() == WebRTCPeerConnection.STATE_CONNECTED, "b is STATE_CONNECTED")
	t.check(not received.has("negotiated"), "no data_channel_received for a negotiated channel")

	for label in IN_BAND:
		var want = IN_BAND[label]
		for ch in [mine[label], received[label]]:
			t.check(ch.get_label() == label, "label " + label)
			t.check(ch.is_ordered() == want[1], "is_ordered " + label)
			t.check(ch.get_max_packet_life_time() == want[2], "get_max_packet_life_time %s: %d" % [label, ch.get_max_packet_life_time()])
			t.check(ch.get_max_retransmits() == want[3], "get_max_retransmits %s: %d" % [label, ch.get_max_retransmits()])
			t.check(ch.get_protocol() == want[4], "get_protocol " + label)
			t.check(not ch.is_negotiated(), "in-band channel is not negotiated: " + label)
		t.check(mine[label].get_id() == received[label].get_id() and mine[label].get_id() != 65535,
				"both ends agree on the stream id of " + label)
	for ch in [neg_a, neg_b]:
		t.check(ch.is_negotiated() and ch.get_id() == 7 and not ch.is_ordered(), "negotiated channel properties")

	# Every channel, both directions: binary, text (was_string_packet), an empty packet (Godot's PacketPeer
	# returns OK and sends nothing), then a marker proving nothing else arrived.
	var pairs = [[neg_a, neg_b], [neg_b, neg_a]]
	for label in IN_BAND:
		pairs.append([mine[label], received[label]])
		pairs.append([received[label], mine[label]])
	for pair in pairs:
		var from = pair[0]
		var to = pair[1]
		var what = "%s %s" % [from.get_label(), "a->b" if from in mine.values() or from == neg_a else "b->a"]
		from.write_mode = WebRTCDataChannel.WRITE_MODE_BINARY
		t.check(from.put_packet(PoolByteArray([0, 1, 2, 255])) == OK, "put binary " + what)
		from.write_mode = WebRTCDataChannel.WRITE_MODE_TEXT
		t.check(from.put_packet("héllo ✓".to_utf8()) == OK, "put text " + what)
		t.check(from.put_packet(PoolByteArray()) == OK, "put empty " + what)
		from.write_mode = WebRTCDataChannel.WRITE_MODE_BINARY
		t.check(from.put_var({"end": what}) == OK, "put_var " + what)
		yield(t.until("3 packets on " + what, self, "_has_packets", [to, 3]), "completed")
		t.check(to.get_available_packet_count() == 3, "exactly 3 packets queued " + what)
		var p1 = to.get_packet()
		t.check(p1 == PoolByteArray([0, 1, 2, 255]) and not to.was_string_packet(), "binary packet " + what)
		var p2 = to.get_packet()
		t.check(p2.get_string_from_utf8() == "héllo ✓" and to.was_string_packet(), "text packet " + what)
		var v = to.get_var()
		t.check(typeof(v) == TYPE_DICTIONARY and v.get("end") == what and not to.was_string_packet(), "get_var " + what)
		var none = to.get_packet()
		t.check(none.size() == 0 and to.get_packet_error() == ERR_UNAVAILABLE, "get_packet on empty " + what)

	# A large message on the reliable channel (below the 65536 default max-message-size).
	var big = PoolByteArray()
	big.resize(60000)
	for i in range(big.size()):
		big[i] = i % 251
	t.check(mine["reliable"].put_packet(big) == OK, "put 60000 bytes")
	yield(t.until("large packet", self, "_has_packets", [received["reliable"], 1]), "completed")
	t.check(received["reliable"].get_packet() == big, "60000 bytes arrive intact")
	if mine["reliable"].has_method("get_buffered_amount"):
		t.check(mine["reliable"].get_buffered_amount() >= 0, "get_buffered_amount (Godot 3.4+)")

	# Close a channel from the creating side, another from the receiving side.
	mine["reliable"].close()
	yield(t.until("reliable closed on b", self, "_is_state", [received["reliable"], WebRTCDataChannel.STATE_CLOSED]), "completed")
	yield(t.until("reliable closed on a", self, "_is_state", [mine["reliable"], WebRTCDataChannel.STATE_CLOSED]), "completed")
	received["unordered"].close()
	yield(t.until("unordered closed on a", self, "_is_state", [mine["unordered"], WebRTCDataChannel.STATE_CLOSED]), "completed")
	t.check(mine["unordered"].put_packet(PoolByteArray([1])) != OK, "put_packet on a closed channel fails")
	t.check(mine["lifetime"].get_ready_state() == WebRTCDataChannel.STATE_OPEN, "other channels stay open")
	t.unwire(a, b)
	b.disconnect("data_channel_received", self, "_on_channel")
	received.clear()
	t.pollers = []

func _test_close_and_reinitialize():
	print("close from either side, initialize() again")
	for closer in ["offerer", "answerer"]:
		var a = WebRTCPeerConnection.new()
		var b = WebRTCPeerConnection.new()
		for round_no in range(2):
			var what = "%s closes, round %d" % [closer, round_no]
			t.check(a.initialize(Common.CONFIG) == OK and b.initialize(Common.CONFIG) == OK, "initialize " + what)
			t.check(a.get_connection_state() == WebRTCPeerConnection.STATE_NEW, "STATE_NEW after initialize " + what)
			var ca = a.create_data_channel("c", {"negotiated": true, "id": 1})
			var cb = b.create_data_channel("c", {"negotiated": true, "id": 1})
			_connect_pair(a, b)
			yield(t.until("open " + what, self, "_all_open", [[ca, cb]]), "completed")
			t.check(ca.put_packet("ping".to_utf8()) == OK, "send " + what)
			yield(t.until("ping " + what, self, "_has_packets", [cb, 1]), "completed")
			t.check(cb.get_packet().get_string_from_utf8() == "ping", "ping arrives " + what)
			var x = a if closer == "offerer" else b
			var y = b if closer == "offerer" else a
			var cy = cb if closer == "offerer" else ca
			x.close()
			t.check(x.get_connection_state() == WebRTCPeerConnection.STATE_CLOSED, "STATE_CLOSED after close() " + what)
			t.check(x.create_offer() != OK, "create_offer refused after close() " + what)
			yield(t.until("peer's channel closes " + what, self, "_is_state", [cy, WebRTCDataChannel.STATE_CLOSED]), "completed")
			yield(t.until("peer leaves STATE_CONNECTED " + what, self, "_pc_state_is_not", [y, WebRTCPeerConnection.STATE_CONNECTED]), "completed")
			y.close()
			t.unwire(a, b)
			t.pollers = []

var kept = []

func _keep(channel):
	kept.append(channel)

func _objects_are(n_pc, n_dc):
	return t.live_objects() == [n_pc, n_dc]

func _test_dropped_objects_are_freed():
	print("objects dropped by GDScript free the native side")
	yield(t.frames(1), "completed")
	var before = t.live_objects()
	t.check(before == [0, 0], "nothing alive before: %s" % [before])
	var a = WebRTCPeerConnection.new()
	var b = WebRTCPeerConnection.new()
	a.initialize(Common.CONFIG)
	b.initialize(Common.CONFIG)
	var ch = a.create_data_channel("x")
	a.create_data_channel("dropped-at-once")  # the returned reference is dropped right away
	b.connect("data_channel_received", self, "_keep")
	t.check(t.live_objects() == [2, 1], "2 connections and 1 channel alive: %s" % [t.live_objects()])
	_connect_pair(a, b)
	yield(t.until("x received", self, "_all_open", [[ch]]), "completed")
	t.unwire(a, b)
	b.disconnect("data_channel_received", self, "_keep")
	t.pollers = []
	a = null
	b = null
	ch = null
	kept.clear()

func _test_invalid_options():
	print("invalid options")
	var pc = WebRTCPeerConnection.new()
	t.check(pc.initialize({"iceServers": [{"urls": ["bogus:example.org"]}]}) != OK, "initialize refuses a bad ICE URL")
	t.check(pc.initialize(Common.CONFIG) == OK, "initialize works again")
	var full = {
		"iceServers": [
			{"urls": ["stun:127.0.0.1:3478", "stun:[::1]:3478"]},
			{"urls": "turn:127.0.0.1:3478?transport=tcp", "username": "user", "credential": "secret"},
		],
		"interfaces": ["127.0.0.1"], "portRangeBegin": 40000, "portRangeEnd": 40100, "connectTimeoutMs": 10000,
	}
	t.check(pc.initialize(full) == OK, "iceServers with urls (array or string), username, credential and rtcpeer's extras")
	t.check(pc.initialize({"iceServers": [{"urls": ["turn:127.0.0.1"]}]}) != OK, "a TURN server without credentials is refused")
	t.check(pc.create_data_channel("x", {"negotiated": true}) == null, "negotiated without id is refused")
	t.check(pc.create_data_channel("x", {"id": 3}) == null, "id without negotiated is refused")
	t.check(pc.create_data_channel("x", {"maxRetransmits": 1, "maxPacketLifeTime": 1}) == null, "both limits refused")
	t.check(pc.create_data_channel("x", {"negotiated": true, "id": 70000}) == null, "id out of range refused")

func _test_channel_outlives_connection():
	print("a channel kept after its connection is freed")
	var pc = WebRTCPeerConnection.new()
	pc.initialize(Common.CONFIG)
	var ch = pc.create_data_channel("orphan", {"maxPacketLifeTime": 10})
	pc = null
	yield(t.frames(1), "completed")  # GDScript may still hold the connection in a temporary until its next call
	t.check(t.live_objects() == [0, 1], "the connection is freed, the channel kept: %s" % [t.live_objects()])
	t.check(ch.get_ready_state() == WebRTCDataChannel.STATE_CLOSED, "its channel reports STATE_CLOSED")
	t.check(ch.put_packet(PoolByteArray([1])) != OK, "and refuses to send")
	t.check(ch.get_label() == "orphan" and ch.get_max_packet_life_time() == 10, "its properties stay readable")
	ch.close()
	ch = null
	yield(t.frames(1), "completed")
	t.check(t.live_objects() == [0, 0], "then the channel is freed too")
