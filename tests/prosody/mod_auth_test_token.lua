-- TEST ONLY, never deploy: stands in for Jitsi's token authentication (mod_auth_token),
-- which Debian does not package. SASL PLAIN with an HS256 JWT as the password sets
-- session.jitsi_meet_context_user from the token's context.user, as Jitsi does; any other
-- password logs in without an identity (like jicofo's focus user or a guest).

local jwt = require "util.jwt";
local new_sasl = require "util.sasl".new;

local secret = module:get_option_string("test_token_secret");
if not secret then
	error("test_token_secret is required");
end

local provider = {};

function provider.test_password()
	return true;
end

function provider.get_password()
	return nil, "not available";
end

function provider.set_password()
	return nil, "not supported";
end

function provider.user_exists()
	return true;
end

function provider.create_user()
	return nil, "not supported";
end

function provider.users()
	return function () return nil; end;
end

function provider.get_sasl_handler(session)
	return new_sasl(module.host, {
		plain_test = function (_, _, password)
			if password:match("^[%w_-]+%.[%w_-]+%.[%w_-]+$") then
				local ok, payload = jwt.verify(secret, password);
				if not ok then
					return false, true;
				end
				local context = type(payload.context) == "table" and payload.context or {};
				session.jitsi_meet_context_user = context.user;
			end
			return true, true;
		end;
	});
end

module:provides("auth", provider);
