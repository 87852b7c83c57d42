# Conformance of `rtcpeer serve` to both generations of Godot's webrtc_signaling demo protocol, seen from Godot's
# own WebSocketClient: the 3.x line protocol ("J: lobby", "I:", "N:", "D:", "O:", "A:", "C:", "S:") and the 4.x JSON
# one ({"type","id","data"}), chosen per connection by its first frame, in one lobby. Run by signaling.sh, which
# starts the server and passes its URL in RTCPEER_SIGNALING_URL.
extends SceneTree

const Common = preload("res://common.gd")
var t

class RawClient extends Reference:
	var ws = WebSocketClient.new()
	var got = []
	var open = false
	var closed = false
	var json = false

	func _init(url, speaks_json):
		json = speaks_json
		ws.connect("connection_established", self, "_on_open")
		ws.connect("data_received", self, "_on_data")
		ws.connect("connection_closed", self, "_on_closed")
		ws.connect("connection_error", self, "_on_closed")
		ws.connect_to_url(url)

	func poll():
		ws.poll()

	func _on_open(_protocol):
		ws.get_peer(1).set_write_mode(WebSocketPeer.WRITE_MODE_TEXT)
		open = true

	func _on_closed(_was_clean = false):
		closed = true

	# JSON messages are normalized to "type id data" so both dialects compare as strings.
	func _on_data():
		var text = ws.get_peer(1).get_packet().get_string_from_utf8()
		if json:
			var m = parse_json(text)
			got.append("%d %d %s" % [int(m["type"]), int(m["id"]), m["data"]])
		else:
			got.append(text)

	func send(text):
		ws.get_peer(1).put_packet(text.to_utf8())

	func send_json(type, id, data):
		send(to_json({"type": type, "id": id, "data": data}))

func _initialize():
	t = Common.new(self)
	_run()

func _count(client, n):
	return client.got.size() >= n

func _is_open(client):
	return client.open

func _is_closed(client):
	return client.closed

func _client(url, json):
	var c = RawClient.new(url, json)
	t.pollers.append(c)
	yield(t.until("websocket open", self, "_is_open", [c]), "completed")
	return c

func _run():
	yield(self, "idle_frame")
	var url = OS.get_environment("RTCPEER_SIGNALING_URL")
	t.check(url != "", "server URL given")

	print("3.x host creates a lobby")
	var host = yield(_client(url, false), "completed")
	host.send("J: \n")
	yield(t.until("I: and J:", self, "_count", [host, 2]), "completed")
	t.check(host.got[0] == "I: 1\n", "the creator is peer 1: " + host.got[0])
	t.check(host.got[1].begins_with("J: ") and host.got[1].ends_with("\n") and host.got[1].length() > 4, "J: names the lobby")
	var lobby = host.got[1].substr(3, host.got[1].length() - 4)

	print("3.x peer joins")
	var p2 = yield(_client(url, false), "completed")
	p2.send("J: %s\n" % lobby)
	yield(t.until("p2: I:, N: 1, J:", self, "_count", [p2, 3]), "completed")
	t.check(p2.got[0].begins_with("I: ") and p2.got[0] != "I: 1\n", "p2 gets its id: " + p2.got[0])
	var id2 = int(p2.got[0].substr(3))
	t.check(id2 > 1, "p2's id is above 1")
	t.check(p2.got[1] == "N: 1\n", "p2 is told about the host: " + p2.got[1])
	t.check(p2.got[2] == "J: %s\n" % lobby, "p2's join is confirmed last")
	yield(t.until("host: N: p2", self, "_count", [host, 3]), "completed")
	t.check(host.got[2] == "N: %d\n" % id2, "the host is told about p2")

	print("4.x JSON peer joins the same lobby")
	var p3 = yield(_client(url, true), "completed")
	p3.send_json(0, 0, lobby)
	yield(t.until("p3: ID, 2 x PEER_CONNECT, JOIN", self, "_count", [p3, 4]), "completed")
	var id3 = int(p3.got[0].split(" ")[1])
	t.check(p3.got[0] == "1 %d true" % id3 and id3 > 1 and id3 != id2, "p3 gets ID with the mesh flag: " + p3.got[0])
	var connects = [p3.got[1], p3.got[2]]
	connects.sort()
	var want = ["2 1 ", "2 %d " % id2]
	want.sort()
	t.check(connects == want, "p3 is told about the host and p2: %s" % [connects])
	t.check(p3.got[3] == "0 0 " + lobby, "p3's JOIN confirms the lobby")
	yield(t.until("N: p3 to both 3.x peers", self, "_count", [p2, 4]), "completed")
	yield(t.until("N: p3 to the host", self, "_count", [host, 4]), "completed")
	t.check(p2.got[3] == "N: %d\n" % id3 and host.got[3] == "N: %d\n" % id3, "3.x peers are told about p3")

	print("relay across the two dialects")
	p2.send("O: 1\nSDP-FROM-2")
	yield(t.until("offer at host", self, "_count", [host, 5]), "completed")
	t.check(host.got[4] == "O: %d\nSDP-FROM-2" % id2, "O: relayed with the sender's id: " + host.got[4])
	host.send("A: %d\nSDP-FROM-1" % id2)
	yield(t.until("answer at p2", self, "_count", [p2, 5]), "completed")
	t.check(p2.got[4] == "A: 1\nSDP-FROM-1", "the host's id is 1 in relays: " + p2.got[4])
	p2.send("C: %d\n0\n0\ncandidate:1 1 udp 1 127.0.0.1 9 typ host" % id3)
	yield(t.until("candidate at p3", self, "_count", [p3, 5]), "completed")
	t.check(p3.got[4] == "6 %d \n0\n0\ncandidate:1 1 udp 1 127.0.0.1 9 typ host" % id2, "C: becomes a JSON CANDIDATE: " + p3.got[4])
	p3.send_json(6, id2, "\n1\n0\ncandidate:2 1 udp 1 127.0.0.1 10 typ host")
	p3.send_json(4, 1, "SDP-FROM-3")
	yield(t.until("candidate at p2", self, "_count", [p2, 6]), "completed")
	t.check(p2.got[5] == "C: %d\n1\n0\ncandidate:2 1 udp 1 127.0.0.1 10 typ host" % id3, "a JSON CANDIDATE becomes C: " + p2.got[5])
	yield(t.until("JSON offer at host", self, "_count", [host, 6]), "completed")
	t.check(host.got[5] == "O: %d\nSDP-FROM-3" % id3, "a JSON OFFER becomes O: " + host.got[5])

	print("errors close the socket")
	p2.send("O: 999\nnobody")
	yield(t.until("p2 closed for an invalid destination", self, "_is_closed", [p2]), "completed")
	yield(t.until("D: p2 at the host", self, "_count", [host, 7]), "completed")
	t.check(host.got[6] == "D: %d\n" % id2, "the host is told p2 left: " + host.got[6])
	yield(t.until("PEER_DISCONNECT at p3", self, "_count", [p3, 6]), "completed")
	t.check(p3.got[5] == "3 %d " % id2, "p3 is told p2 left: " + p3.got[5])
	for bad in ["hello", "X: 1\n", "O: one\nsdp", "J"]:
		var c = yield(_client(url, false), "completed")
		c.send(bad)
		yield(t.until("closed after %s" % bad.c_escape(), self, "_is_closed", [c]), "completed")
		t.check(c.got.size() == 0, "nothing but a close for " + bad.c_escape())
	var late = yield(_client(url, false), "completed")
	late.send("S: \n")
	yield(t.until("seal outside a lobby closes", self, "_is_closed", [late]), "completed")

	print("only the host seals")
	var p4 = yield(_client(url, false), "completed")
	p4.send("J: %s\n" % lobby)
	yield(t.until("p4 joined", self, "_count", [p4, 4]), "completed")
	p4.send("S: \n")
	yield(t.until("a non-host seal closes", self, "_is_closed", [p4]), "completed")
	host.send("S: \n")
	yield(t.until("S: at the host", self, "_has_line", [host, "S: \n"]), "completed")
	yield(t.until("SEAL at p3", self, "_has_line", [p3, "7 0 "]), "completed")
	var p5 = yield(_client(url, false), "completed")
	p5.send("J: %s\n" % lobby)
	yield(t.until("joining a sealed lobby closes", self, "_is_closed", [p5]), "completed")
	t.check(p5.got.size() == 0, "no id for a sealed lobby")
	quit(t.summary())

func _has_line(client, line):
	return line in client.got
