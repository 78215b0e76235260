-- The spool of mod_video_call_events: the durable queue of events not yet delivered, loaded
-- with module:require("video_call_events_spool") and run in the module's environment.
--
-- Append-only segment files in Prosody's data directory (util.datamanager, the files behind
-- the "internal" storage), SEGMENT_SIZE events each, one line per event:
-- "<created unix s> <event id> <body>". An append is one write to an open-for-append file,
-- far cheaper than rewriting a keyval file per event. The "index" record holds the segment
-- and count of events already delivered; it is saved within INDEX_SAVE_DELAY of a
-- delivery, so a crash may resend (never lose) the last few delivered events.

local datamanager = require "util.datamanager";

local SPOOL_STORE = "video_call_events";
local SEGMENT_SIZE = 1000;
local INDEX_SAVE_DELAY = 0.25;

local function segment_user(segment)
	return "segment" .. segment;
end

local function segment_path(segment)
	return datamanager.getpath(segment_user(segment), module.host, SPOOL_STORE, "spool");
end

local function read_segment(segment)
	local file = io.open(segment_path(segment));
	if not file then return nil; end
	local records = {};
	for line in file:lines("L") do
		local created, id, body = line:match("^(%d+) (%S+) (.-)\n$");
		if created then
			table.insert(records, { created = tonumber(created); id = id; body = body });
		else -- a torn last line after a crash: that event never finished being spooled
			module:log("warn", "Skipping a damaged line in spool segment %d", segment);
		end
	end
	file:close();
	return records;
end

local function position(segment, offset)
	return segment * SEGMENT_SIZE + offset;
end

-- This host's spool as left on disk: events appended before a restart (or a reload of the
-- module) and not yet delivered come first.
local function open()
	local head_segment, head_offset; -- next event to deliver: records[head_offset + 1] of head_segment
	local tail_segment, tail_count; -- where the next event is appended
	local segments = {}; -- records of the head and tail segments, read once
	do
		local index = datamanager.load("index", module.host, SPOOL_STORE) or {};
		head_segment, head_offset = index.segment or 1, index.offset or 0;
		-- A segment is removed after the index moves past it; a crash in between leaves it behind.
		os.remove(segment_path(head_segment - 1));
		tail_segment = head_segment;
		local function exists(segment)
			local file = io.open(segment_path(segment));
			if file then file:close(); end
			return file ~= nil;
		end
		while exists(tail_segment + 1) do
			tail_segment = tail_segment + 1;
		end
		segments[tail_segment] = read_segment(tail_segment) or {};
		tail_count = #segments[tail_segment];
		local pending = (tail_segment - head_segment) * SEGMENT_SIZE + tail_count - head_offset;
		if pending > 0 then
			module:log("info", "About %d undelivered events in the spool", pending);
		end
	end

	local spool = {};

	local index_timer;
	function spool.save_index()
		if index_timer then
			index_timer:stop();
			index_timer = nil;
		end
		local ok, err = datamanager.store("index", module.host, SPOOL_STORE,
			{ segment = head_segment; offset = head_offset });
		if not ok then
			module:log("error", "Could not save the spool index (events may be sent again): %s", err);
		end
	end
	local save_index = spool.save_index;

	-- Appends one event; its position in the spool, or nil and an error.
	function spool.append(id, body)
		if tail_count >= SEGMENT_SIZE then
			if tail_segment ~= head_segment then
				segments[tail_segment] = nil;
			end
			tail_segment, tail_count = tail_segment + 1, 0;
			segments[tail_segment] = {};
		end
		local created = os.time();
		local ok, err = datamanager.append_raw(segment_user(tail_segment), module.host, SPOOL_STORE, "spool",
			("%d %s %s\n"):format(created, id, body));
		if not ok then
			return nil, err;
		end
		tail_count = tail_count + 1;
		table.insert(segments[tail_segment], { created = created; id = id; body = body });
		return position(tail_segment, tail_count);
	end

	-- The position of the oldest undelivered event: an appended event whose position is
	-- greater is still waiting.
	function spool.head_position()
		return position(head_segment, head_offset);
	end

	-- The oldest undelivered record, or nil when everything has been delivered.
	function spool.peek()
		while head_segment < tail_segment or head_offset < tail_count do
			local records = segments[head_segment];
			if not records then
				records = read_segment(head_segment) or {};
				segments[head_segment] = records;
			end
			local record = records[head_offset + 1];
			if record then
				return record;
			end
			if head_segment == tail_segment then
				return nil; -- the tail lost lines it counted: nothing more to send
			end
			module:log("warn", "Spool segment %d ends early; moving on", head_segment);
			head_offset = SEGMENT_SIZE; -- treat it as complete
			segments[head_segment] = nil;
			local done = head_segment;
			head_segment, head_offset = head_segment + 1, 0;
			save_index();
			os.remove(segment_path(done));
		end
		return nil;
	end

	-- The record spool.peek returned has been delivered or dropped.
	function spool.advance()
		head_offset = head_offset + 1;
		if head_offset < SEGMENT_SIZE then
			if not index_timer then
				index_timer = module:add_timer(INDEX_SAVE_DELAY, function ()
					index_timer = nil;
					save_index();
				end);
			end
			return;
		end
		local done = head_segment;
		segments[done] = nil;
		head_segment, head_offset = head_segment + 1, 0;
		save_index();
		os.remove(segment_path(done));
		if head_segment > tail_segment then
			tail_segment, tail_count = head_segment, 0;
			segments[tail_segment] = {};
		end
	end

	return spool;
end

return { open = open };
