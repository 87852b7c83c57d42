# Godot and the rest of rtcpeer together: this Godot client joins the lobby `rtcpeer chat` created on
# `rtcpeer serve` (tests/godot/chat.sh), speaking the Godot 3.x demo's line protocol while the CLI speaks the 4.x JSON
# one, and exchanges chat lines with it both ways over the CLI's negotiated channel (id 1, JSON text messages).
extends SceneTree

const Common = preload("res://common.gd")
const Client = preload("res://signaling_v3.gd")
var t
var client
var sent = false
var got = ""

func _initialize():
	t = Common.new(self)
	_run()

func _run():
	yield(self, "idle_frame")
	client = Client.new()
	var url = OS.get_environment("RTCPEER_SIGNALING_URL")
	var lobby = OS.get_environment("RTCPEER_LOBBY")
	t.check(url != "" and lobby != "", "signaling URL and lobby given")
	t.check(client.start(url, lobby) == OK, "connect_to_url " + url)
	t.pollers = [client]
	yield(t.until("the CLI's line", self, "_exchange"), "completed")
	t.check(got == "hello from cli", "received the CLI's chat line: " + got)
	t.check(client.my_id > 1, "joined as a peer (not the host): %d" % client.my_id)
	client.close()
	quit(t.summary())

func _exchange():
	for id in client.channels:
		var ch = client.channels[id]
		if ch.get_ready_state() != WebRTCDataChannel.STATE_OPEN:
			continue
		if not sent:
			ch.write_mode = WebRTCDataChannel.WRITE_MODE_TEXT
			t.check(ch.put_packet(to_json({"kind": "chat", "text": "hello from godot"}).to_utf8()) == OK, "send to the CLI")
			sent = true
		while ch.get_available_packet_count() > 0:
			var text = ch.get_packet().get_string_from_utf8()
			t.check(ch.was_string_packet(), "the CLI sends text messages")
			var m = parse_json(text)
			if typeof(m) == TYPE_DICTIONARY and m.get("kind") == "chat":
				got = m.get("text")
	return got != ""
