-- TEST ONLY: a stand-in for jitsi-meet's mod_muc_lobby_rooms, as far as mod_video_call_events
-- can observe it. Loaded on the main MUC host with test_lobby_muc naming the lobby component:
--   the global `create-lobby-room` event makes the room members-only (its occupants members
--   first) and creates <node>@<lobby> as a persistent room holding main_room_jid, the main
--   room keeping its JID in _data.lobbyroom;
--   lobby rooms take their affiliations from the main room;
--   a join of the members-only main room without an affiliation is refused (407), as the
--   lobby plugin refuses it at priority -4, above Prosody's members_only at -5;
--   destroying the main room destroys its lobby room.
-- Admission and denial are what Jitsi's clients do: a member affiliation in the main room
-- (the mediated invite; Prosody's members_only grants it) and a kick from the lobby room.

local st = require "util.stanza";

local lobby_host = module:get_option_string("test_lobby_muc");

local function lobby_service()
	local host = prosody.hosts[lobby_host];
	return host and host.modules.muc;
end

local function main_service()
	return prosody.hosts[module.host].modules.muc;
end

local function attach_lobby(room)
	local lobby = lobby_service();
	local jid = room.jid:match("^[^@]+") .. "@" .. lobby_host;
	if lobby.get_room_from_jid(jid) then return; end
	local lobby_room = lobby.create_room(jid);
	lobby_room:set_persistent(true);
	lobby_room.main_room_jid = room.jid;
	room._data.lobbyroom = lobby_room.jid;
	local room_mt = getmetatable(lobby_room).__index;
	if not room_mt.test_lobby_affiliations then
		room_mt.test_lobby_affiliations = true;
		room_mt.get_affiliation = function (self, who)
			local main = self.main_room_jid and main_service().get_room_from_jid(self.main_room_jid);
			return main and main:get_affiliation(who) or "none";
		end;
	end
end

module:hook_global("create-lobby-room", function (event)
	local room = event.room;
	for _, occupant in room:each_occupant() do
		if (room:get_affiliation(occupant.bare_jid) or "none") == "none" then
			room:set_affiliation(true, occupant.bare_jid, "member");
		end
	end
	room:set_members_only(true);
	attach_lobby(room);
end);

module:hook("muc-occupant-pre-join", function (event)
	local room, stanza = event.room, event.stanza;
	if not room._data.lobbyroom or not room:get_members_only() then return; end
	if (room:get_affiliation(stanza.attr.from) or "none") ~= "none" then return; end
	local reply = st.error_reply(stanza, "auth", "registration-required");
	reply.tags[1].attr.code = "407";
	event.origin.send(reply:tag("x", { xmlns = "http://jabber.org/protocol/muc" }));
	return true;
end, -4);

module:hook("muc-room-destroyed", function (event)
	local room = event.room;
	local lobby = room._data.lobbyroom and lobby_service();
	local lobby_room = lobby and lobby.get_room_from_jid(room._data.lobbyroom);
	if lobby_room then
		lobby_room:set_persistent(false);
		lobby_room:destroy(nil, "Lobby room closed.");
	end
	room._data.lobbyroom = nil;
end, 1);
