# The Godot 3.x webrtc_signaling demo's flow against `rtcpeer serve`: three WebRTCMultiplayer peers in one process
# meet through the 3.x line protocol (signaling_v3.gd, written like the demo's client), form a mesh, the host seals
# the lobby, and packets flow between every pair. Run by signaling.sh.
extends SceneTree

const Common = preload("res://common.gd")
const Client = preload("res://signaling_v3.gd")
var t
var clients = []
var connected = {}

func _initialize():
	t = Common.new(self)
	_run()

func _on_peer_connected(id, me):
	connected[me].append(id)

func _new_client(url, lobby):
	var c = Client.new()
	c.mp = WebRTCMultiplayer.new()
	var index = clients.size()
	connected[index] = []
	c.mp.connect("peer_connected", self, "_on_peer_connected", [index])
	t.check(c.start(url, lobby) == OK, "connect_to_url")
	clients.append(c)
	t.pollers.append(c)
	return c

func _joined(c):
	return c.lobby != "" and c.my_id != 0

func _meshed():
	for i in connected:
		if connected[i].size() < 2:
			return false
	return true

func _sealed():
	for c in clients:
		if not c.sealed:
			return false
	return true

func _packets(want):
	for c in clients:
		if c.mp.get_available_packet_count() < want:
			return false
	return true

func _run():
	yield(self, "idle_frame")
	var url = OS.get_environment("RTCPEER_SIGNALING_URL")
	var host = _new_client(url, "")
	yield(t.until("host's lobby", self, "_joined", [host]), "completed")
	t.check(host.my_id == 1, "the lobby's creator is peer 1")
	for _i in range(2):
		var c = _new_client(url, host.lobby)
		yield(t.until("joined", self, "_joined", [c]), "completed")
	yield(t.until("full mesh", self, "_meshed"), "completed")
	for c in clients:
		t.check(c.mp.get_peers().size() == 2, "peer %d has a connection to both others" % c.my_id)
	host.send("S: \n")
	yield(t.until("everyone sees the seal", self, "_sealed"), "completed")
	for c in clients:
		c.mp.transfer_mode = NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE
		c.mp.set_target_peer(NetworkedMultiplayerPeer.TARGET_PEER_BROADCAST)
		t.check(c.mp.put_packet(("from %d" % c.my_id).to_utf8()) == OK, "broadcast from %d" % c.my_id)
	yield(t.until("two packets everywhere", self, "_packets", [2]), "completed")
	for c in clients:
		var got = []
		while c.mp.get_available_packet_count() > 0:
			var from = c.mp.get_packet_peer()
			t.check(c.mp.get_packet().get_string_from_utf8() == "from %d" % from, "payload names its sender")
			got.append(from)
		t.check(got.size() == 2 and not c.my_id in got, "peer %d heard both others: %s" % [c.my_id, got])
	for c in clients:
		c.close()
	t.pollers = []
	quit(t.summary())
