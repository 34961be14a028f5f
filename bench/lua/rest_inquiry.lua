-- REST inquiry: GET /api/v1/insured/{nationalId}/contributions with the bench client's bearer
-- token, a random seeded person in every request. See common.lua for the settings.
local c = require("common")

local headers = { ["Authorization"] = "Bearer " .. c.token, ["Accept"] = "application/json" }

c.install(function()
  return wrk.format("GET", "/api/v1/insured/" .. c.random_person() .. "/contributions", headers)
end)
