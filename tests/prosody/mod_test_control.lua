-- TEST ONLY: lets the test suite drive a running Prosody without an admin console.
-- Every 0.1 s it looks for request files in test_control_dir:
--   reload-<module>  reloads that module on this host (a real modulemanager reload);
--   destroy-<room>   destroys that room of this MUC host;
--   kick-<room>      kicks the occupant whose nick the file holds from that room;
--   members-only-<room> fires `create-lobby-room` for it (mod_test_lobby answers);
--   member-<room>    gives "<bare JID> [affiliation]" (default member) in that room.
-- With test_control_timing = true it also logs, for each hook of mod_video_call_events,
-- the time spent inside it, by hooking just above and just below its priority.

local modulemanager = require "core.modulemanager";
local time = require "util.time";

local dir = module:get_option_string("test_control_dir");
local timing = module:get_option_boolean("test_control_timing", false);

local function take(name)
	local path = dir .. "/" .. name;
	local file = io.open(path);
	if not file then return false; end
	file:close();
	os.remove(path);
	return true;
end

local function reply(name)
	local file = io.open(dir .. "/" .. name, "w");
	if file then file:close(); end
end

module:add_timer(0.1, function ()
	if take("reload-video_call_events") then
		local ok, err = modulemanager.reload(module.host, "video_call_events");
		module:log("info", "Reloaded video_call_events: %s", ok and "ok" or tostring(err));
		reply("reloaded-video_call_events");
	end
	local muc = prosody.hosts[module.host].modules.muc;
	for room in muc.live_rooms() do
		local node = room.jid:match("^[^@]+");
		if take("destroy-" .. node) then
			room:destroy(nil, "destroyed by the test");
		end
		local path = dir .. "/kick-" .. node;
		local file = io.open(path);
		if file then
			local nick = file:read("a");
			file:close();
			os.remove(path);
			room:set_role(true, room.jid .. "/" .. nick, "none", "kicked by the test");
		end
		if take("members-only-" .. node) then
			-- What mod_muc_lobby_rooms does on `create-lobby-room` (here mod_test_lobby).
			prosody.events.fire_event("create-lobby-room", { room = room });
			reply("members-only-done-" .. node);
		end
		local member_path = dir .. "/member-" .. node;
		local member_file = io.open(member_path);
		if member_file then
			local bare, affiliation = member_file:read("a"):match("^(%S+)%s*(%S*)$");
			member_file:close();
			os.remove(member_path);
			room:set_affiliation(true, bare, affiliation ~= "" and affiliation or "member",
				"admitted by the test");
			reply("member-done-" .. node);
		end
	end
	return 0.1;
end);

if timing then
	-- mod_video_call_events's priorities: see its PRIORITY_* constants.
	local hooks = {
		["muc-room-created"] = -10;
		["muc-occupant-joined"] = -10;
		["muc-occupant-left"] = 1;
		["muc-room-destroyed"] = -10;
	};
	local started = {};
	for name, priority in pairs(hooks) do
		module:hook(name, function ()
			started[name] = time.now();
		end, priority + 0.5);
		module:hook(name, function ()
			local began = started[name];
			if began then
				module:log("info", "hook-timing %s %.9f", name, time.now() - began);
			end
			started[name] = nil;
		end, priority - 0.5);
	end
end
