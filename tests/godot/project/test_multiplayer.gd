# Godot's own WebRTCMultiplayer on rtcpeer: three peers in one process as a full mesh. WebRTCMultiplayer creates
# its three negotiated channels (reliable, ordered, unreliable) itself through create_data_channel, so this
# exercises Godot's use of the plugin, not ours. Reliable / unreliable-ordered / unreliable transfer modes,
# broadcast, targeted and "all but one" packets, peer_connected and peer_disconnected.
extends SceneTree

const Common = preload("res://common.gd")
const IDS = [1, 2, 3]
var t
var mps = {}
var events = {}

func _initialize():
	t = Common.new(self)
	_run()

func _run():
	yield(self, "idle_frame")
	yield(_test_mesh(), "completed")
	yield(t.frames(1), "completed")
	var live = t.live_objects()
	t.check(live == [0, 0], "every connection and channel freed once dropped: %s" % [live])
	quit(t.summary())

func _on_peer_connected(peer, me):
	events[me].append(peer)

func _on_peer_disconnected(peer, me):
	events[me].append(-peer)

func _events_have(me, wanted):
	for e in wanted:
		if not e in events[me]:
			return false
	return true

func _all_meshed():
	for id in IDS:
		if events[id].size() < 2:
			return false
	return true

func _counts_at_least(wanted):
	for id in wanted:
		if mps[id].get_available_packet_count() < wanted[id]:
			return false
	return true

func _drain(mp):
	var got = []
	while mp.get_available_packet_count() > 0:
		var from = mp.get_packet_peer()
		got.append("%d:%s" % [from, mp.get_packet().get_string_from_utf8()])
	return got

func _test_mesh():
	print("three WebRTCMultiplayer peers as a mesh")
	for id in IDS:
		var mp = WebRTCMultiplayer.new()
		t.check(mp.initialize(id, false) == OK, "initialize(%d) as a mesh" % id)
		mp.connect("peer_connected", self, "_on_peer_connected", [id])
		mp.connect("peer_disconnected", self, "_on_peer_disconnected", [id])
		mps[id] = mp
		events[id] = []
	t.pollers = mps.values()
	var pairs = []
	for i in IDS:
		for j in IDS:
			if i < j:
				var pi = WebRTCPeerConnection.new()
				var pj = WebRTCPeerConnection.new()
				t.check(pi.initialize(Common.CONFIG) == OK and pj.initialize(Common.CONFIG) == OK, "initialize %d-%d" % [i, j])
				t.check(mps[i].add_peer(pi, j) == OK, "add_peer(%d) on %d" % [j, i])
				t.check(mps[j].add_peer(pj, i) == OK, "add_peer(%d) on %d" % [i, j])
				t.wire(pi, pj)
				# The demo's rule: the peer with the larger id makes the offer.
				t.check(pj.create_offer() == OK, "create_offer %d->%d" % [j, i])
				pairs.append([pi, pj])
	yield(t.until("every peer_connected", self, "_all_meshed"), "completed")
	for id in IDS:
		var others = []
		for o in IDS:
			if o != id:
				others.append(o)
		var seen = events[id].duplicate()
		seen.sort()
		t.check(seen == others, "peer %d saw peer_connected for %s: %s" % [id, others, seen])
		t.check(mps[id].get_connection_status() == NetworkedMultiplayerPeer.CONNECTION_CONNECTED, "status connected %d" % id)
		t.check(mps[id].get_unique_id() == id, "get_unique_id %d" % id)
		for o in others:
			t.check(mps[id].has_peer(o), "has_peer(%d) on %d" % [o, id])
			var info = mps[id].get_peer(o)
			t.check(info["connected"] and info["channels"].size() == 3, "get_peer(%d) on %d" % [o, id])

	var modes = {
		NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE: "reliable",
		NetworkedMultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED: "ordered",
		NetworkedMultiplayerPeer.TRANSFER_MODE_UNRELIABLE: "unreliable",
	}
	for mode in modes:
		var name = modes[mode]
		for id in IDS:
			mps[id].transfer_mode = mode
		mps[1].set_target_peer(NetworkedMultiplayerPeer.TARGET_PEER_BROADCAST)
		t.check(mps[1].put_packet(("all-" + name).to_utf8()) == OK, "broadcast " + name)
		mps[2].set_target_peer(3)
		t.check(mps[2].put_packet(("to3-" + name).to_utf8()) == OK, "targeted " + name)
		mps[3].set_target_peer(-1)  # everyone but peer 1
		t.check(mps[3].put_packet(("not1-" + name).to_utf8()) == OK, "exclusion " + name)
		yield(t.until(name + " packets", self, "_counts_at_least", [{2: 2, 3: 2}]), "completed")
		yield(t.frames(3), "completed")  # anything that should not arrive would have by now
		var got1 = _drain(mps[1])
		var got2 = _drain(mps[2])
		var got3 = _drain(mps[3])
		got2.sort()
		got3.sort()
		t.check(got1 == [], "peer 1 gets nothing in %s: %s" % [name, got1])
		t.check(got2 == ["1:all-" + name, "3:not1-" + name], "peer 2 in %s: %s" % [name, got2])
		t.check(got3 == ["1:all-" + name, "2:to3-" + name], "peer 3 in %s: %s" % [name, got3])

	# Many packets 1 -> 2, reliable: all arrive, in order.
	mps[1].transfer_mode = NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE
	mps[1].set_target_peer(2)
	for i in range(200):
		mps[1].put_packet(str(i).to_utf8())
	yield(t.until("200 reliable packets", self, "_counts_at_least", [{2: 200}]), "completed")
	var order = _drain(mps[2])
	var in_order = order.size() == 200
	for i in range(order.size()):
		in_order = in_order and order[i] == "1:%d" % i
	t.check(in_order, "200 reliable packets in order")

	# Peer 3 leaves: it closes its connections; everyone gets peer_disconnected.
	for o in [1, 2]:
		mps[3].get_peer(o)["connection"].close()
	yield(t.until("peer_disconnected everywhere", self, "_all_saw_3_leave"), "completed")
	t.check(mps[1].get_peers().keys() == [2] and mps[2].get_peers().keys() == [1], "3 removed from 1 and 2")
	t.check(mps[3].get_peers().size() == 0, "3 removed both peers")
	# 1 and 2 still talk.
	mps[2].set_target_peer(1)
	mps[2].put_packet("still here".to_utf8())
	yield(t.until("1 and 2 still connected", self, "_counts_at_least", [{1: 1}]), "completed")
	t.check(_drain(mps[1]) == ["2:still here"], "1 and 2 keep their connection")

	for pair in pairs:
		t.unwire(pair[0], pair[1])
	for id in IDS:
		mps[id].close()
	t.pollers = []
	mps.clear()

func _all_saw_3_leave():
	return _events_have(1, [-3]) and _events_have(2, [-3]) and _events_have(3, [-1, -2])
