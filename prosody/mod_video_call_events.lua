-- mod_video_call_events: reports the rooms and occupants of a MUC component to an HTTP
-- receiver as signed, durable, ordered events (event contract version 1, see README.md).
--
-- Every event is written to Prosody's storage before its hook returns; a single sender then
-- POSTs the spool in order, one event at a time, and retries with backoff until the receiver
-- accepts it or the event is too old. Hooks never touch the network.
--
-- Two helper files lie beside this one and load with module:require (Prosody looks for
-- <name>.lib.lua in the plugin paths): video_call_events_spool.lib.lua, the durable queue of
-- unsent events, and video_call_events_delivery.lib.lua, which signs and POSTs it. Install all
-- three together.

local array = require "util.array";
local base64 = require "util.encodings".base64;
local json = require "util.json";
local random = require "util.random";
local time = require "util.time";
local uuid = require "util.uuid".generate;

local CONTRACT_VERSION = 1;

local url = module:get_option_string("video_call_events_url");
local secret_option = module:get_option("video_call_events_secret");
local timeout = module:get_option_number("video_call_events_timeout", 10);
local snapshot_interval = module:get_option_number("video_call_events_snapshot_interval", 60);
local max_age = module:get_option_number("video_call_events_max_age", 172800);
local retry_max = module:get_option_number("video_call_events_retry_max", 300);
local ignore_patterns = module:get_option_array("video_call_events_ignore", {
	"^focus@", "^jibri@", "^recorder@", "^transcriber@", "@hidden%.",
});
local ignore_room_patterns = module:get_option_array("video_call_events_ignore_rooms", {
	"^__jicofo%-health%-check",
});
-- Loaded on the lobby component (docker-jitsi-meet: XMPP_LOBBY_MUC_MODULES), this module
-- reports knocks: lobby.joined / lobby.left naming the main room, and snapshots that list the
-- knocking occupants under `lobby`; never room.* or occupant.* events. `video_call_events_
-- main_muc` is the main MUC host (default: this host's first label replaced with "muc").
local lobby_host = module:get_option_boolean("video_call_events_lobby",
	module.host:match("^lobby%.") ~= nil);
local main_muc = module:get_option_string("video_call_events_main_muc",
	(module.host:gsub("^[^.]+%.", "muc.")));
-- On the main MUC: turn Jitsi's lobby on for every room as it is created (firing the
-- `create-lobby-room` event that mod_muc_lobby_rooms handles) and let a token with
-- context.user.lobby_bypass = true past it. docker-jitsi-meet ships neither jitsi-contrib's
-- token_lobby_autostart nor token_lobby_bypass, and token_affiliation grants its affiliation
-- only after the join, too late for the lobby's check.
-- `"lobby"` (or true) turns it on, `"off"`, `""` or false leaves it off: the string form is
-- what docker-compose can pass through from VIDEOCALLS_WAITING_ROOM.
local waiting_room_option = module:get_option("video_call_events_waiting_room", false);
local waiting_room = waiting_room_option == true or waiting_room_option == "lobby";
if not waiting_room and waiting_room_option ~= false and waiting_room_option ~= "off"
		and waiting_room_option ~= "" then
	error("video_call_events_waiting_room must be \"lobby\" or \"off\"");
end
-- Recorders (Jibri) as docker-jitsi-meet names them: recorder@hidden.<domain> and
-- recorder@recorder.<domain>, <domain> being this MUC host without its first label.
local domain = module:get_option_string("video_call_events_domain",
	(module.host:gsub("^[^.]+%.", "")));
local escaped_domain = domain:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0");
local recorder_patterns = module:get_option_array("video_call_events_recorders", {
	"^recorder@hidden%." .. escaped_domain .. "$",
	"^recorder@recorder%." .. escaped_domain .. "$",
});

-- Hook priorities. muc_meeting_id sets room._data.meetingId at priority 0, so rooms are
-- reported after it. mod_muc destroys an empty room from inside muc-occupant-left at
-- priority -1, so occupant.left is recorded above that, before room.destroyed.
local PRIORITY_ROOM_CREATED = -10;
local PRIORITY_OCCUPANT_JOINED = -10;
local PRIORITY_OCCUPANT_LEFT = 1;
local PRIORITY_ROOM_DESTROYED = -10;
local PRIORITY_PRE_JOIN = -3;

-- Checked once at load: a module that cannot sign must not spool events it can never send.
if not url then
	error("video_call_events_url is required");
end
local signing_keys = {};
do
	local secrets = type(secret_option) == "table" and secret_option or { secret_option };
	for _, secret in ipairs(secrets) do
		local encoded = type(secret) == "string" and secret:match("^whsec_(.+)$");
		local key = encoded and base64.decode(encoded);
		if not key or key == "" then
			error("video_call_events_secret must be a whsec_<base64> string or a list of them");
		end
		table.insert(signing_keys, key);
	end
	if #signing_keys == 0 then
		error("video_call_events_secret is required");
	end
end

local function now_ms()
	return math.floor(time.now() * 1000);
end

-- One boot_id per Prosody process (shared by every host) and one seq counter per host, in
-- module:shared tables, which a reload of this module hands to the new instance: a reload
-- neither restarts seq nor announces a new boot.
local process = module:shared("/*/video_call_events/process");
if not process.boot_id then
	local suffix = random.bytes(4):gsub(".", function (c) return ("%02x"):format(c:byte()); end);
	process.boot_id = ("b_%d_%s"):format(os.time(), suffix);
end
local boot = module:shared("boot");
local new_boot = boot.seq == nil;
if new_boot then
	boot.seq = 0;
end

local function matches_any(value, patterns)
	for _, pattern in ipairs(patterns) do
		if value:match(pattern) then
			return true;
		end
	end
	return false;
end

local function ignored_room(room)
	return matches_any(room.jid:match("^[^@]*") or "", ignore_room_patterns);
end

local function ignored_occupant(occupant)
	return occupant.bare_jid ~= nil and matches_any(occupant.bare_jid, ignore_patterns);
end

-- Checked before ignored_occupant: a recorder is reported as a recording, never as presence.
local function recorder(occupant)
	return occupant.bare_jid ~= nil and matches_any(occupant.bare_jid, recorder_patterns);
end

-- Per-room state lives on the room object, which outlives a reload of this module.
local function room_state(room)
	local state = room.video_call_events;
	if not state then
		state = {
			meeting_id = room._data and room._data.meetingId or uuid();
			occupants = {};
			recordings = {};
		};
		room.video_call_events = state;
	end
	return state;
end

-- Built once per room and once per occupant session and reused by each of their events:
-- allocating less in hooks means fewer Lua GC steps land inside them.
local main_room_of, knocker; -- defined with the lobby rules below

-- On the lobby host a room is reported as the main room it belongs to.
local function room_fields(room, state)
	local fields = state.fields;
	if not fields and lobby_host then
		local main, main_jid = main_room_of(room);
		local main_state = main and main.video_call_events;
		fields = {
			name = main_jid:match("^[^@]*");
			jid = main_jid;
			meeting_id = main_state and main_state.meeting_id
				or main and main._data and main._data.meetingId or state.meeting_id;
		};
		state.fields = fields;
	elseif not fields then
		fields = { name = room.jid:match("^[^@]*"); jid = room.jid; meeting_id = state.meeting_id };
		state.fields = fields;
	end
	return fields;
end

local function occupant_fields(record)
	local fields = record.fields;
	if not fields then
		fields = {
			session = record.session;
			user_id = record.user_id;
			moderator = record.role == "moderator";
			affiliation = record.affiliation;
			role = record.role or json.null;
		};
		record.fields = fields;
	end
	return fields;
end

-- Identity comes only from the token (Jitsi's token auth stores context.user here).
local function user_id_of(session)
	local user = session and session.jitsi_meet_context_user;
	local id = type(user) == "table" and user.id;
	if type(id) == "string" or type(id) == "number" then
		return tostring(id);
	end
	return json.null;
end

local function new_record(room, occupant, session, joined_at)
	return {
		session = "s_" .. uuid();
		user_id = user_id_of(session);
		joined_at = joined_at;
		role = occupant.role;
		affiliation = room:get_affiliation(occupant.bare_jid) or "none";
		bare_jid = occupant.bare_jid;
	};
end

---------------------------------------------------------------------------------------------
-- Spool and delivery (video_call_events_spool.lib.lua, video_call_events_delivery.lib.lua)
---------------------------------------------------------------------------------------------

local spool = module:require("video_call_events_spool").open();
local delivery = module:require("video_call_events_delivery").new({
	url = url;
	keys = signing_keys;
	timeout = timeout;
	retry_max = retry_max;
	max_age = max_age;
	spool = spool;
});

local last_snapshot_position;

local function enqueue(event_type, fields, occurred_at)
	boot.seq = boot.seq + 1;
	local id = "evt_" .. uuid();
	local body = {
		version = CONTRACT_VERSION;
		id = id;
		type = event_type;
		occurred_at = occurred_at or now_ms();
		source = { host = module.host; boot_id = process.boot_id; seq = boot.seq };
	};
	for key, value in pairs(fields) do
		body[key] = value;
	end
	local spooled, err = spool.append(id, json.encode(body));
	if not spooled then
		module:log("error", "Event %s (%s) could not be spooled and is lost: %s", id, event_type, err);
		return nil;
	end
	module:log("debug", "Spooled %s %s seq %d", event_type, id, boot.seq);
	delivery.wake();
	return spooled;
end

---------------------------------------------------------------------------------------------
-- Events
---------------------------------------------------------------------------------------------

-- The main room a lobby room belongs to: mod_muc_lobby_rooms names the lobby room after it
-- (<node>@lobby.<domain>) and keeps its JID in main_room_jid.
function main_room_of(room)
	local main_jid = room.main_room_jid or (room.jid:gsub("@.*$", "@" .. main_muc));
	local host = prosody.hosts[(main_jid:match("@(.*)$"))];
	local muc = host and host.modules.muc;
	return muc and muc.get_room_from_jid and muc.get_room_from_jid(main_jid), main_jid;
end

local PRIVILEGED = { owner = true; admin = true };

-- How a knock ended. Jitsi admits with a mediated invite to the main room, which makes the
-- knocker a member there (Prosody's members_only), and the knocker then leaves the lobby
-- room itself; it denies by kicking the knocker from the lobby room (status 307).
local function knock_reason(room, record, reason)
	local main = main_room_of(room);
	local affiliation = main and record.bare_jid and main:get_affiliation(record.bare_jid);
	if affiliation == "member" or affiliation == "admin" or affiliation == "owner" then
		return "admitted";
	end
	if reason == "kicked" then
		return "denied";
	end
	if reason == "left" then
		return "left";
	end
	return "unknown";
end

local function occupant_left(room, state, nick, record, reason, occurred_at)
	state.occupants[nick] = nil;
	if lobby_host then
		enqueue("lobby.left", {
			room = room_fields(room, state);
			occupant = occupant_fields(record);
			reason = knock_reason(room, record, reason);
		}, occurred_at);
		return;
	end
	enqueue("occupant.left", {
		room = room_fields(room, state);
		occupant = occupant_fields(record);
		reason = reason;
	}, occurred_at);
end

local function leave_reason(event)
	if event.room.destroying then
		return "room_destroyed";
	end
	local stanza = event.stanza;
	if stanza and stanza.name == "presence" then
		return "left";
	end
	-- Without a stanza the occupant was removed by the room: a kick, a ban or a change to
	-- members-only, unless its session failed (then its stored presence is unavailable).
	local presence = event.occupant and event.occupant:get_presence();
	if presence and presence.attr.type == "unavailable" then
		return "unknown";
	end
	return "kicked";
end

-- Jitsi's moderators join the lobby room too, to see who knocks: an owner or admin of the
-- main room, or someone already in it, is watching the lobby, not knocking.
function knocker(room, occupant)
	local main = main_room_of(room);
	if not main or not occupant.bare_jid then return true; end
	if PRIVILEGED[main:get_affiliation(occupant.bare_jid) or "none"] then return false; end
	for _, present in main:each_occupant() do
		if present.bare_jid == occupant.bare_jid then return false; end
	end
	return true;
end

-- A room made by its first occupant's presence fires muc-occupant-joined before
-- muc-room-created; whichever comes first announces the room, so room.created always
-- precedes the first occupant.joined.
local function announce(room, state, occurred_at)
	if state.announced then return; end
	state.announced = true;
	enqueue("room.created", { room = room_fields(room, state) }, occurred_at);
end

local function on_room_created(event)
	local room = event.room;
	if lobby_host or ignored_room(room) then return; end
	announce(room, room_state(room));
	if waiting_room and not room._data.lobbyroom then
		prosody.events.fire_event("create-lobby-room", { room = room });
	end
end

-- Just above the lobby's own check (mod_muc_lobby_rooms at -4, members_only at -5), like
-- token_lobby_bypass: a bypassing token holder becomes a member and walks in.
local function on_pre_join(event)
	local room, session = event.room, event.origin;
	if not room._data.lobbyroom or ignored_room(room) then return; end
	local user = session and session.jitsi_meet_context_user;
	if type(user) ~= "table" or user.lobby_bypass ~= true then return; end
	local bare = event.occupant and event.occupant.bare_jid;
	if bare and (room:get_affiliation(bare) or "none") == "none" then
		room:set_affiliation(true, bare, "member");
	end
end

-- The recording's mode is not in the recorder's presence; `null` says "unknown".
local function recording_event(room, state, event_type, session, occurred_at)
	enqueue(event_type, {
		room = room_fields(room, state);
		recording = { session = session; mode = json.null };
	}, occurred_at);
end

local function on_occupant_joined(event)
	local room, occupant = event.room, event.occupant;
	if ignored_room(room) then return; end
	if recorder(occupant) then
		local state = room_state(room);
		local session = "r_" .. uuid();
		announce(room, state, now_ms());
		state.recordings = state.recordings or {};
		state.recordings[occupant.nick] = session;
		recording_event(room, state, "recording.started", session);
		return;
	end
	if ignored_occupant(occupant) then return; end
	if lobby_host and not knocker(room, occupant) then return; end
	local state = room_state(room);
	local record = new_record(room, occupant, event.origin, now_ms());
	state.occupants[occupant.nick] = record;
	if lobby_host then
		enqueue("lobby.joined", {
			room = room_fields(room, state);
			occupant = occupant_fields(record);
		}, record.joined_at);
		return;
	end
	announce(room, state, record.joined_at);
	enqueue("occupant.joined", {
		room = room_fields(room, state);
		occupant = occupant_fields(record);
		reason = json.null;
	}, record.joined_at);
end

local function on_occupant_left(event)
	local room = event.room;
	local state = room.video_call_events;
	local nick = event.nick or (event.occupant and event.occupant.nick);
	local recording = state and nick and state.recordings and state.recordings[nick];
	if recording then
		state.recordings[nick] = nil;
		recording_event(room, state, "recording.stopped", recording);
		return;
	end
	local record = state and nick and state.occupants[nick];
	if not record then return; end -- never reported, or already closed by room.destroyed
	occupant_left(room, state, nick, record, leave_reason(event));
end

local function on_room_destroyed(event)
	local room = event.room;
	if ignored_room(room) then return; end
	local state = room_state(room);
	if state.destroyed then return; end
	state.destroyed = true;
	-- Whatever order other modules fire things in, nobody stays in a destroyed room.
	local remaining = {};
	for nick, record in pairs(state.occupants) do
		table.insert(remaining, { nick = nick; record = record });
	end
	table.sort(remaining, function (a, b) return a.record.joined_at < b.record.joined_at; end);
	local occurred_at = now_ms();
	for _, item in ipairs(remaining) do
		occupant_left(room, state, item.nick, item.record, "room_destroyed", occurred_at);
	end
	for nick, session in pairs(state.recordings or {}) do
		state.recordings[nick] = nil;
		recording_event(room, state, "recording.stopped", session, occurred_at);
	end
	if lobby_host then return; end
	enqueue("room.destroyed", { room = room_fields(room, state) }, occurred_at);
end

local function live_rooms()
	local muc = prosody.hosts[module.host] and prosody.hosts[module.host].modules.muc;
	if muc and muc.live_rooms then
		return muc.live_rooms();
	end
	return function () return nil; end;
end

local function take_snapshot()
	-- A snapshot still waiting in the spool is as good as a new one: do not pile them up
	-- while the receiver is away.
	if last_snapshot_position and last_snapshot_position > spool.head_position() then
		return;
	end
	local occurred_at = now_ms();
	local rooms = array();
	for room in live_rooms() do
		if not ignored_room(room) and not (room.video_call_events and room.video_call_events.destroyed) then
			local state = room_state(room);
			local occupants = array();
			for nick, occupant in room:each_occupant() do
				if not ignored_occupant(occupant) and (not lobby_host or state.occupants[nick]
						or knocker(room, occupant)) then
					local record = state.occupants[nick];
					if not record then
						-- Joined before this module was loaded: adopt it with a new session.
						local session = occupant.jid and prosody.full_sessions[occupant.jid];
						record = new_record(room, occupant, session, occurred_at);
						state.occupants[nick] = record;
					end
					occupants:push({
						session = record.session;
						user_id = record.user_id;
						joined_at = record.joined_at;
					});
				end
			end
			if lobby_host then
				rooms:push({ room = room_fields(room, state); occupants = array(); lobby = occupants });
			else
				rooms:push({ room = room_fields(room, state); occupants = occupants });
			end
		end
	end
	-- interval_s tells the service how often to expect us: three intervals without a word and
	-- it treats this host as silent (crashed, cut off) and stops counting its sessions.
	last_snapshot_position = enqueue("rooms.snapshot", {
		rooms = rooms;
		interval_s = math.max(1, math.floor(snapshot_interval + 0.5));
	}, occurred_at);
end

function module.load()
	-- Rooms that already exist (loaded into a running server) were created unseen.
	for room in live_rooms() do
		room_state(room).announced = true;
	end
	if new_boot then
		enqueue("prosody.started", {});
	end
	if snapshot_interval > 0 then
		-- The first snapshot runs from the event loop, once the rooms (if any) are in place.
		module:add_timer(0, function ()
			take_snapshot();
			return snapshot_interval;
		end);
	end
	delivery.wake();
end

function module.unload()
	spool.save_index();
	delivery.stop();
end

-- Deliveries since the last index save would be sent again after a restart: save it now.
module:hook_global("server-stopping", spool.save_index);

module:hook("muc-room-created", on_room_created, PRIORITY_ROOM_CREATED);
if waiting_room and not lobby_host then
	module:hook("muc-occupant-pre-join", on_pre_join, PRIORITY_PRE_JOIN);
end
module:hook("muc-occupant-joined", on_occupant_joined, PRIORITY_OCCUPANT_JOINED);
module:hook("muc-occupant-left", on_occupant_left, PRIORITY_OCCUPANT_LEFT);
module:hook("muc-room-destroyed", on_room_destroyed, PRIORITY_ROOM_DESTROYED);
