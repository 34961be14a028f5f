-- The Lua half of bench/run.py's self-check: for each line of the file SELFCHECK_INPUT
-- ("digest <nonce hex> <created> <password>", "nid <index> <seed>" or "bday <epoch> 0") it
-- prints what this code computes; run.py compares it with Python's answers. Exits before any
-- request is sent.
local c = require("common")

local function unhex(hex)
  return (hex:gsub("..", function(pair)
    return string.char(tonumber(pair, 16))
  end))
end

local out = { "SELFCHECK" }
local input = assert(os.getenv("SELFCHECK_INPUT"), "SELFCHECK_INPUT is not set")
for line in io.lines(input) do
  local kind, a, b, d = line:match("^(%S+) (%S+) (%S+) ?(%S*)$")
  if kind == "digest" then
    out[#out + 1] = c.password_digest(unhex(a), b, d)
  elseif kind == "nid" then
    out[#out + 1] = c.national_id_for(tonumber(a), tonumber(b))
  elseif kind == "bday" then
    out[#out + 1] = c.business_day(tonumber(a))
  end
end
out[#out + 1] = "END"
io.write(table.concat(out, "\n") .. "\n")
os.exit(0)
