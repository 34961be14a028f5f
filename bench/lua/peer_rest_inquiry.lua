-- The spyne peer's JSON inquiry over plain HTTP (bench/peer/spyne_app.py): a random seeded person
-- in every request. See common.lua for the settings.
local c = require("common")

local headers = { ["Accept"] = "application/json" }

c.install(function()
  return wrk.format("GET", "/rest/InquireContribution?storeId=S-0001&terminalId=T-01&nationalId="
    .. c.random_person(), headers)
end)
