# One Godot peer of the mixed Godot/C++ mesh test (mixed.sh): Godot's own WebRTCMultiplayer in mesh mode, through
# the plugin, joins a lobby of `rtcpeer serve` with the 3.x line protocol (signaling_v3.gd) next to C++
# rtcpeer::MultiplayerPeer peers on the JSON protocol (mixed_peer.cpp, which speaks the same packets).
# Environment: RTCPEER_SIGNALING_URL, RTCPEER_LOBBY, RTCPEER_MIXED_PEERS (peers in the mesh, us included),
# RTCPEER_MIXED_SILENT=1 (send no data packets, only the end and done markers: the test must fail).
# Once every other peer is connected: "R <our id>" reliable, "U <our id>" unreliable, "E <our id>" reliable to each,
# by peer id. Passes when every other peer's R, U and E arrived from the id their text names; an E before its R or a
# peer leaving before its packets arrived fails at once. Then "D <our id>" to all, and quit once every other peer
# said done or left.
extends SceneTree

const Common = preload("res://common.gd")
const Client = preload("res://signaling_v3.gd")
var t
var c = null
var total = 0
var silent = false
var connected = []
var heard = {}  # id -> {"R": bool, "U": bool, "E": bool, "D": bool, "left": bool}
var failure = ""
var passed = false

func _initialize():
	t = Common.new(self)
	_run()

func _heard(id):
	if not heard.has(id):
		heard[id] = {"R": false, "U": false, "E": false, "D": false, "left": false}
	return heard[id]

func _on_peer_connected(id):
	connected.append(id)
	_heard(id)
	print("connected %d" % id)

func _on_peer_disconnected(id):
	connected.erase(id)
	var h = _heard(id)
	h["left"] = true
	print("left %d" % id)
	if not passed and not (h["R"] and h["U"] and h["E"]):
		failure = "peer %d left before its packets arrived" % id

func _drain():
	while failure == "" and c.mp.get_available_packet_count() > 0:
		var from = c.mp.get_packet_peer()
		var text = c.mp.get_packet().get_string_from_utf8()
		if text.length() < 2 or text.substr(1, text.length() - 1) != " %d" % from:
			failure = "packet \"%s\" came from peer id %d" % [text, from]
			return
		var kind = text.substr(0, 1)
		var h = _heard(from)
		if not kind in ["R", "U", "E", "D"]:
			failure = "unknown packet \"%s\"" % text
			return
		if kind == "E" and not h["R"]:
			failure = "peer %d ended its data but its reliable packet never arrived" % from
			return
		h[kind] = true
		if kind != "D":
			print("got %s from %d" % [kind, from])

func _joined():
	return failure != "" or (c.lobby != "" and c.my_id != 0)

func _all_connected():
	_drain()
	return failure != "" or connected.size() == total - 1

func _all_heard():
	_drain()
	if failure != "":
		return true
	if heard.size() != total - 1:
		return false
	for id in heard:
		var h = heard[id]
		if not (h["R"] and h["U"] and h["E"]):
			return false
	return true

func _all_done():
	_drain()
	if failure != "":
		return true
	for id in heard:
		if not (heard[id]["D"] or heard[id]["left"]):
			return false
	return true

func _put(mode, text):
	c.mp.transfer_mode = mode
	t.check(c.mp.put_packet(text.to_utf8()) == OK, "put_packet(%s)" % text)

func _finish():
	if failure != "":
		t.check(false, failure)  # prints "FAIL: why"
	if c:
		c.close()
	t.pollers = []
	quit(t.summary())

func _run():
	yield(self, "idle_frame")
	total = int(OS.get_environment("RTCPEER_MIXED_PEERS"))
	silent = OS.get_environment("RTCPEER_MIXED_SILENT") == "1"
	# The plugin must have loaded (else Godot has no WebRTC implementation and nothing below could connect).
	if not t.check(WebRTCPeerConnection.new().initialize(Common.CONFIG) == OK, "the rtcpeer plugin is loaded"):
		failure = "WebRTCPeerConnection.initialize failed: is the rtcpeer plugin loaded?"
		return _finish()
	c = Client.new()
	c.mp = WebRTCMultiplayer.new()
	c.mp.connect("peer_connected", self, "_on_peer_connected")
	c.mp.connect("peer_disconnected", self, "_on_peer_disconnected")
	t.check(c.start(OS.get_environment("RTCPEER_SIGNALING_URL"), OS.get_environment("RTCPEER_LOBBY")) == OK,
		"connect_to_url")
	t.pollers.append(c)
	yield(t.until("joined", self, "_joined"), "completed")
	print("lobby %s id %d" % [c.lobby, c.my_id])
	yield(t.until("every other peer connected", self, "_all_connected"), "completed")
	if failure != "":
		return _finish()
	var me = " %d" % c.my_id
	for id in connected:
		c.mp.set_target_peer(id)
		if not silent:
			_put(NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE, "R" + me)
			_put(NetworkedMultiplayerPeer.TRANSFER_MODE_UNRELIABLE, "U" + me)
		_put(NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE, "E" + me)
	print("sent to %d peers" % connected.size())
	yield(t.until("R, U and E from every other peer", self, "_all_heard"), "completed")
	if failure != "":
		return _finish()
	passed = true
	var ids = heard.keys()
	ids.sort()
	var names = PoolStringArray()
	for id in ids:
		names.append(str(id))
	print("PASS id=%d peers=%s" % [c.my_id, names.join(",")])
	t.check(true, "packets from every other peer")
	c.mp.set_target_peer(NetworkedMultiplayerPeer.TARGET_PEER_BROADCAST)
	_put(NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE, "D" + me)
	yield(t.until("every other peer done or gone", self, "_all_done"), "completed")
	_finish()
