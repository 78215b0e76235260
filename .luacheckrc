-- luacheck configuration for Prosody modules (prosody/ and the test-only ones in tests/prosody/).
std = "lua54"
max_line_length = 120
-- The server-wide table, read only: state that outlives a reload goes to module:shared().
read_globals = { "prosody" }
globals = {
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
