-- SOAP ConfirmPayment: each request pays the current month for a different person (from
-- BENCH_CANDIDATES, lines "nationalId amount month", split between the threads) under a fresh
-- partner transaction id and a fresh WS-Security UsernameToken. See common.lua.
local c = require("common")

local mine, next_one = {}, 0

local function load_candidates()
  local path = assert(os.getenv("BENCH_CANDIDATES"), "BENCH_CANDIDATES is not set")
  local n = 0
  for line in io.lines(path) do
    if n % c.threads == (tid or 0) then
      local nid, amount, month = line:match("^(%d+) (%S+) (%S+)$")
      mine[#mine + 1] = { nid, amount, month }
    end
    n = n + 1
  end
end

c.install(function()
  if next_one == 0 then
    load_candidates()
  end
  next_one = next_one + 1
  local person = mine[(next_one - 1) % #mine + 1] -- wraps (then: already paid) if too few
  local now = os.time()
  local bangkok = now + 7 * 3600
  local body = "<sso:ConfirmPayment>"
    .. "<sso:partnerTxnId>" .. c.run_id .. "-" .. (tid or 0) .. "-" .. next_one
    .. "</sso:partnerTxnId>"
    .. "<sso:nationalId>" .. person[1] .. "</sso:nationalId><sso:section>40</sso:section>"
    .. "<sso:months><sso:month>" .. person[3] .. "</sso:month></sso:months>"
    .. "<sso:amount>" .. person[2] .. "</sso:amount>"
    .. "<sso:storeId>S-0001</sso:storeId><sso:terminalId>T-01</sso:terminalId>"
    .. "<sso:shift>1</sso:shift><sso:operatorId>OP-1</sso:operatorId>"
    .. "<sso:businessDate>" .. c.business_day(now) .. "</sso:businessDate>"
    .. "<sso:paidAt>" .. os.date("!%Y-%m-%dT%H:%M:%S+07:00", bangkok) .. "</sso:paidAt>"
    .. "</sso:ConfirmPayment>"
  return wrk.format("POST", "/soap/v1", c.SOAP_HEADERS, c.soap_envelope(c.username, c.password,
    body))
end)
