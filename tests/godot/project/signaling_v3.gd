# A client of the Godot 3.x webrtc_signaling demo's line protocol over Godot's own WebSocketClient, written like
# the demo's client/ws_webrtc_client.gd + multiplayer_client.gd: "J: lobby" to join, then for every "N: id" a
# WebRTCPeerConnection with the negotiated channel `channel_options` (the larger id makes the offer), O:/A:/C:
# relayed through the server. The scripts poll it every frame (poll()).
extends Reference

const Common = preload("res://common.gd")

signal joined(lobby)
signal channel_added(id, channel)

var ws = WebSocketClient.new()
var lobby = ""
var my_id = 0
var peers = {}
var channels = {}
var channel_options = {"negotiated": true, "id": 1}
var log_lines = []
var closed = false
var sealed = false
# With a WebRTCMultiplayer (the demo's multiplayer_client.gd), "I:" makes it a mesh peer with that id and every
# connection is added to it, which creates its own channels.
var mp = null

func _init():
	ws.connect("connection_established", self, "_on_open")
	ws.connect("data_received", self, "_on_data")
	ws.connect("connection_closed", self, "_on_closed")
	ws.connect("connection_error", self, "_on_closed")

func start(url, lobby_name):
	lobby = lobby_name
	return ws.connect_to_url(url)

func poll():
	ws.poll()
	if mp:
		mp.poll()
	else:
		for id in peers:
			peers[id].poll()

func send(text):
	return ws.get_peer(1).put_packet(text.to_utf8())

func _on_open(_protocol):
	ws.get_peer(1).set_write_mode(WebSocketPeer.WRITE_MODE_TEXT)
	send("J: %s\n" % lobby)

func _on_closed(_was_clean = false):
	closed = true

func _on_data():
	var msg = ws.get_peer(1).get_packet().get_string_from_utf8()
	log_lines.append(msg)
	var req = msg.split("\n", true, 1)
	if req.size() != 2 or req[0].length() < 3:
		return
	var type = req[0]
	if type.begins_with("J: "):
		lobby = type.substr(3, type.length() - 3)
		emit_signal("joined", lobby)
		return
	if type.begins_with("S: "):
		sealed = true
		return
	var src = type.substr(3, type.length() - 3)
	if not src.is_valid_integer():
		return
	var id = int(src)
	if type.begins_with("I: "):
		my_id = id
		if mp:
			mp.initialize(id, false)
	elif type.begins_with("N: "):
		_add_peer(id)
	elif type.begins_with("D: "):
		peers.erase(id)
		if mp and mp.has_peer(id):
			mp.remove_peer(id)
	elif type.begins_with("O: ") and peers.has(id):
		peers[id].set_remote_description("offer", req[1])
	elif type.begins_with("A: ") and peers.has(id):
		peers[id].set_remote_description("answer", req[1])
	elif type.begins_with("C: ") and peers.has(id):
		var c = req[1].split("\n", false)
		if c.size() == 3 and c[1].is_valid_integer():
			peers[id].add_ice_candidate(c[0], int(c[1]), c[2])

func _add_peer(id):
	var pc = WebRTCPeerConnection.new()
	pc.initialize(Common.CONFIG)
	pc.connect("session_description_created", self, "_on_description", [id])
	pc.connect("ice_candidate_created", self, "_on_candidate", [id])
	peers[id] = pc
	if mp:
		mp.add_peer(pc, id)
	else:
		channels[id] = pc.create_data_channel("rtcpeer", channel_options)
		emit_signal("channel_added", id, channels[id])
	if id < my_id:
		pc.create_offer()

func _on_description(type, sdp, id):
	if not peers.has(id):
		return
	peers[id].set_local_description(type, sdp)
	send("%s: %d\n%s" % ["O" if type == "offer" else "A", id, sdp])

func _on_candidate(mid, index, name, id):
	send("C: %d\n%s\n%d\n%s" % [id, mid, index, name])

func close():
	ws.disconnect_from_host()
	if mp:
		mp.close()
	for id in peers:
		peers[id].close()
	peers.clear()
	channels.clear()
