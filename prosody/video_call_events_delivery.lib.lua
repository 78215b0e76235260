-- Delivery for mod_video_call_events: POSTs the spool to the receiver, signed, one request at
-- a time, oldest first, retrying with backoff until the receiver accepts an event or it is too
-- old. Loaded with module:require("video_call_events_delivery") and run in the module's
-- environment.

local base64 = require "util.encodings".base64;
local hashes = require "util.hashes";
local http = require "net.http";

-- The webhook-signature header: a v1 signature per key, space-separated, so the receiver can
-- rotate its secret without refusing events.
local function sign(keys, id, timestamp, body)
	local payload = id .. "." .. timestamp .. "." .. body;
	local signatures = {};
	for i, key in ipairs(keys) do
		signatures[i] = "v1," .. base64.encode(hashes.hmac_sha256(key, payload));
	end
	return table.concat(signatures, " ");
end

local function retry_after(response)
	local value = response and response.headers and response.headers["retry-after"];
	local seconds = value and tonumber(value);
	if seconds and seconds >= 0 then
		return math.min(seconds, 3600);
	end
	return nil;
end

-- The sender of `config.spool` to `config.url`: { url, keys (raw signing keys), timeout,
-- retry_max, max_age, spool }. wake() after an append; stop() when the module unloads.
local function new(config)
	local url, keys, spool = config.url, config.keys, config.spool;
	local timeout, retry_max, max_age = config.timeout, config.retry_max, config.max_age;

	local attempt; -- the request in flight: { record, request, timer }
	local failures = 0;
	local pump_timer, retry_timer;
	local pump; -- defined below

	local function wake()
		if not pump_timer and not retry_timer then
			pump_timer = module:add_timer(0, function ()
				pump_timer = nil;
				pump();
			end);
		end
	end

	local function retry_later(delay)
		retry_timer = module:add_timer(delay, function ()
			retry_timer = nil;
			pump();
		end);
	end

	local function backoff()
		failures = failures + 1;
		local delay = math.min(retry_max, 2 ^ (failures - 1));
		-- Jitter spreads the retries of many Prosody instances after a receiver outage.
		return math.min(retry_max, delay * (0.75 + math.random() * 0.5));
	end

	local function finish(current, code, detail, response)
		attempt = nil;
		if current.timer then
			current.timer:stop();
		end
		local id = current.record.id;
		if code >= 200 and code < 300 then
			failures = 0;
			spool.advance();
			return pump();
		end
		local retryable = code == 0 or code == 408 or code == 429 or code == 401 or code == 403
			or code >= 500 or code < 400;
		if not retryable then
			module:log("error", "Receiver refused event %s with HTTP %d: dropped", id, code);
			failures = 0;
			spool.advance();
			return pump();
		end
		local delay = backoff();
		if code == 429 then
			delay = retry_after(response) or delay;
		end
		if code == 401 or code == 403 then
			module:log("error", "Receiver rejected the signature of event %s (HTTP %d): check "
				.. "video_call_events_secret; retrying in %.1fs", id, code, delay);
		elseif code == 0 then
			module:log("warn", "Event %s not delivered (%s); retrying in %.1fs", id, detail, delay);
		else
			module:log("warn", "Receiver answered HTTP %d for event %s; retrying in %.1fs", code, id, delay);
		end
		retry_later(delay);
	end

	local function send(record)
		local timestamp = tostring(os.time());
		local current = { record = record };
		attempt = current;
		current.timer = module:add_timer(timeout, function ()
			if attempt ~= current then return; end
			local request = current.request;
			finish(current, 0, "timeout");
			-- net.http may never time out by itself: close the connection; its late callback
			-- finds that this attempt is over and is ignored.
			if request then
				if request.cancel then
					pcall(request.cancel, request, "timeout");
				elseif request.conn then
					pcall(request.conn.close, request.conn);
				end
			end
		end);
		current.request = http.request(url, {
			method = "POST";
			body = record.body;
			headers = {
				["Content-Type"] = "application/json";
				["webhook-id"] = record.id;
				["webhook-timestamp"] = timestamp;
				["webhook-signature"] = sign(keys, record.id, timestamp, record.body);
			};
			suppress_errors = true;
		}, function (body, code, response)
			if attempt ~= current or module.loaded == false then return; end
			code = tonumber(code) or 0;
			finish(current, code, code == 0 and tostring(body) or nil, response);
		end);
	end

	function pump()
		if attempt or retry_timer or module.loaded == false then
			return;
		end
		-- Drop what is too old; bounded by the spool length.
		local record = spool.peek();
		while record and os.time() - record.created > max_age do
			module:log("error", "Event %s is older than video_call_events_max_age: dropped", record.id);
			failures = 0;
			spool.advance();
			record = spool.peek();
		end
		if record then
			return send(record);
		end
	end

	-- A reply to the old instance's request is ignored; the new instance sends the event again.
	local function stop()
		local current = attempt;
		attempt = nil;
		if current and current.request and current.request.cancel then
			pcall(current.request.cancel, current.request, "unloaded");
		end
	end

	return { wake = wake; stop = stop };
end

return { new = new };
