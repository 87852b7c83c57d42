# Helpers shared by the test scripts: check counting, a frame loop that polls, and wiring two
# WebRTCPeerConnections to each other directly (the "signaling" is a function call). Only Godot's documented API.
extends Reference

# rtcpeer's own key "interfaces" keeps every candidate on loopback (the tests run in a loopback-only netns).
const CONFIG = {"iceServers": [], "interfaces": ["127.0.0.1"]}

var tree
var passed = 0
var failed = 0
var pollers = []
var native = null

func _init(scene_tree):
	tree = scene_tree

func check(cond, what):
	if cond:
		passed += 1
	else:
		failed += 1
		printerr("FAIL: ", what)
	return cond

func summary():
	print("%d passed, %d failed" % [passed, failed])
	return 0 if failed == 0 and passed > 0 else 1

# Yields frame by frame, polling everything in `pollers`, until obj.method(args...) is true. No frame or time
# limit: ctest's timeout catches a hang, and `step` names the wait in the log.
func until(step, obj, method, args = []):
	print("  waiting: ", step)
	while true:
		yield(tree, "idle_frame")
		for p in pollers:
			p.poll()
		if obj.callv(method, args):
			return true

# Polls for `n` frames (lets in-flight messages arrive where nothing can be waited for).
func frames(n):
	for _i in range(n):
		yield(tree, "idle_frame")
		for p in pollers:
			p.poll()

func wire(a, b):
	a.connect("session_description_created", self, "_on_description", [a, b])
	b.connect("session_description_created", self, "_on_description", [b, a])
	a.connect("ice_candidate_created", self, "_on_candidate", [b])
	b.connect("ice_candidate_created", self, "_on_candidate", [a])

func unwire(a, b):
	for pair in [[a, b], [b, a]]:
		if pair[0].is_connected("session_description_created", self, "_on_description"):
			pair[0].disconnect("session_description_created", self, "_on_description")
		if pair[0].is_connected("ice_candidate_created", self, "_on_candidate"):
			pair[0].disconnect("ice_candidate_created", self, "_on_candidate")

func _on_description(type, sdp, from, to):
	check(from.set_local_description(type, sdp) == OK, "set_local_description(%s)" % type)
	check(to.set_remote_description(type, sdp) == OK, "set_remote_description(%s)" % type)

func _on_candidate(media, index, name, to):
	check(to.add_ice_candidate(media, index, name) == OK, "add_ice_candidate")

# The plugin's GDNative procedures (rtcpeer_version, rtcpeer_live_objects) through GDNative.call_native.
func call_native(procedure):
	if native == null:
		native = GDNative.new()
		native.library = load("res://webrtc/webrtc.tres")
		native.initialize()
	return native.call_native("standard_varcall", procedure, [])

func live_objects():
	var parts = str(call_native("rtcpeer_live_objects")).split(" ")
	return [int(parts[0]), int(parts[1])]
