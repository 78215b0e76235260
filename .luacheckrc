-- luacheck configuration for Prosody modules (prosody/ and the test-only ones in tests/prosody/).
std = "lua54"
max_line_length = 120
globals = {
	-- The server-wide table; mod_video_call_events keeps its per-process boot state there.
	"prosody",
	-- Every module gets `module`; it may set the lifecycle callbacks Prosody calls.
	module = {
		other_fields = true,
		fields = {
			load = { read_only = false },
			unload = { read_only = false },
			save = { read_only = false },
			restore = { read_only = false },
		},
	},
}
